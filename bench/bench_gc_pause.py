"""Garbage-collector pauses of `motet start` under HTTP traffic, with the collector tuned as
`motet start` tunes it (`motet._gc.tune_for_serving`) and without.

    .venv/bin/python bench/bench_gc_pause.py [--requests 20000] [--rounds 2] [--connections 10]
        [--variants shipped,freeze,untouched,young-20000]

Each variant runs `motet start` on a copy of the example app (SQLite, telemetry on, as a
user runs it) in a child process that records every collection the interpreter makes
(`gc.callbacks`: generation and duration), drives it with `wrk` (the `bench_rss.py` load:
`POST /pets` and `GET /hello` alternating, over `--connections` connections) until
`--requests` answers, waits until its queue steps have drained, and stops it. Printed per
variant: collections per generation during the load, the longest pause and the total (also
per request, beside the server's CPU time per request, its queue steps' included), then the
duration of one full collection forced after the load (what each automatic full collection
costs at that size).

Variants, alternating, `--rounds` times each: `shipped` is `motet start` as it is;
`freeze` only freezes start-up's objects (Python's own young threshold); `untouched` leaves
the collector as Python sets it (`tune_for_serving` reduced to its first `gc.collect()`);
`young-N` is `shipped` with the first generation's threshold set to N instead.

The number of connections matters: each request in flight keeps a few dozen young objects
alive (its coroutines, cancel scopes, frames' cells), and once those outnumber the young
threshold, a young collection runs every few dozen requests, walks them, finds them alive,
and moves them on to the older generations, which then fill and are walked in turn.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_rss import (
    byte_compile,
    cpu_ticks,
    drive,
    example_app,
    free_port,
    settle,
    wait_for_port,
)


def serve(project: str, port: int, out: str, variant: str) -> None:
    """The child: `motet start` with every collection recorded, written to `out` at exit."""
    import atexit

    import motet._gc
    from motet.cli._main import main as motet_main

    pauses: list[tuple[int, float, float]] = []  # generation, seconds, when (epoch)
    started = [0.0]
    serving = [False]

    def record(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif serving[0]:
            pauses.append((info["generation"], time.perf_counter() - started[0], time.time()))

    shipped = motet._gc.tune_for_serving

    def tune_for_serving() -> int:
        if variant == "shipped":
            frozen = shipped()
        elif variant.startswith("young-"):
            frozen = shipped()
            gc.set_threshold(int(variant.removeprefix("young-")), *gc.get_threshold()[1:])
        else:
            gc.collect()
            if variant == "freeze":
                gc.freeze()
            frozen = gc.get_freeze_count()
        serving[0] = True  # from here on the collections are serving's
        return frozen

    motet._gc.tune_for_serving = tune_for_serving

    def report() -> None:
        serving[0] = False
        forced = time.perf_counter()
        gc.collect()
        forced = time.perf_counter() - forced
        tracked = len(gc.get_objects())
        Path(out).write_text(json.dumps({"pauses": pauses, "forced": forced, "tracked": tracked}))

    atexit.register(report)
    gc.callbacks.append(record)
    args = ["--project", project, "start", "--port", str(port), "--log-level", "error"]
    motet_main(args, prog_name="motet")


def run(variant: str, requests: int, connections: int, folder: Path) -> dict[str, Any]:
    project = example_app(folder)
    port = free_port()
    out = folder / f"{variant}.json"
    cmd = [sys.executable, __file__, "--serve", str(project), str(port), str(out), variant]
    server = subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        settle(server.pid)
        before = cpu_ticks(server.pid)
        drive(port, requests, connections, folder)
        settle(server.pid)
        cpu = (cpu_ticks(server.pid) - before) / os.sysconf("SC_CLK_TCK")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    result: dict[str, Any] = json.loads(out.read_text())
    result["cpu_us"] = cpu / requests * 1e6
    result["requests"] = requests
    return result


def describe(variant: str, result: dict[str, Any]) -> str:
    pauses = result["pauses"]
    per_gen = []
    for g in range(3):
        mine = [d for gen, d, _ in pauses if gen == g]
        mean = sum(mine) / len(mine) * 1e3 if mine else 0.0
        per_gen.append(
            f"gen{g} {len(mine):4d} x {mean:5.2f} ms (max {max(mine, default=0) * 1e3:5.2f})"
        )
    total = sum(d for _, d, _ in pauses)
    return (
        f"{variant:11} " + "  ".join(per_gen) + f"  total {total * 1e3:6.1f} ms "
        f"({total / result['requests'] * 1e6:4.1f} us of {result['cpu_us']:4.0f} us CPU/request)  "
        f"forced full after {result['forced'] * 1e3:5.2f} ms ({result['tracked']} unfrozen)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--variants", default="shipped,freeze,untouched")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        project, port, out, variant = args.serve
        serve(project, int(port), out, variant)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.requests} requests per run, "
        f"{args.connections} connections",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        byte_compile(sys.executable, Path(tmp))
        for _ in range(args.rounds):
            for variant in args.variants.split(","):
                result = run(variant, args.requests, args.connections, Path(tmp))
                print(describe(variant, result), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
