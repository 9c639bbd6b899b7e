"""SQLite, producer in another process: publish -> handler latency at a steady rate, and the
idle CPU of a waiting consumer, with the doorbell and with the 50 ms poll it replaces.

    .venv/bin/python bench/bench_sqlite_wakeup.py [--rate 100] [--jobs 300] [--rounds 2]

Each round runs, interleaved, one consumer process per mode — `doorbell` (the default:
unix datagram rings, fallback poll 1 s) and `poll` (`doorbell_poll=None`: `PRAGMA
data_version` every 50 ms, the behaviour before the doorbell) — each a motet runtime on a
fresh SQLite file (default durability, synchronous=FULL) with one queue step whose handler
records `time.time()` at its first line. A producer process publishes `--jobs` messages at
`--rate` per second (open loop, absolute schedule), each carrying `time.time()` taken just
before its publish call; latency = handler start - that time (one host, one clock).
The producer's own publish call (a committed, fsync'd write) is part of every latency and
is printed beside it. Idle CPU: the consumer's user+system CPU seconds over `--idle`
seconds with nothing to do (from /proc), as a percentage of one core.
Targets: p50 <= 2 ms, p99 <= 10 ms, idle CPU near zero.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

TOPIC = "wake"
MODES = {"doorbell": {}, "poll": {"doorbell_poll": None}}


def _options(mode: str) -> Any:
    from motet.backends._sqlite_options import SqliteOptions

    return SqliteOptions(**MODES[mode])  # type: ignore[arg-type]


async def _consume(db: str, mode: str, out: str, jobs: int) -> None:
    from motet import Runtime, RuntimeOptions
    from motet.backends._sqlite import SqliteBackend
    from motet.steps import load_step

    latencies: list[float] = []
    done = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        latencies.append(time.time() - data["t"])
        if len(latencies) >= jobs:
            done.set()

    step = load_step({"name": "Wake", "triggers": [{"type": "queue", "topic": TOPIC}]}, handler)
    runtime = Runtime(
        [step],
        backend=SqliteBackend(db, _options(mode)),
        options=RuntimeOptions(log_sink=False, shutdown_timeout=0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        print("ready", flush=True)
        await done.wait()
        Path(out).write_text(json.dumps(latencies))
        print("done", flush=True)
        runtime.stop()


async def _produce(db: str, mode: str, jobs: int, rate: float) -> None:
    from motet._clock import WallClock
    from motet._envelope import Envelope
    from motet.backends._sqlite import SqliteBackend

    backend = SqliteBackend(db, _options(mode))
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())
        start = trio.current_time() + 0.2
        took: list[float] = []
        for i in range(jobs):
            await trio.sleep_until(start + i / rate)
            t = time.time()
            envelope = Envelope(topic=TOPIC, data={"t": t, "n": i}, trace_id="bench")
            await backend.publish([envelope])
            took.append(time.time() - t)
        nursery.cancel_scope.cancel()
    print(f"{statistics.median(took) * 1e3:.3f}", flush=True)  # the publish call's own p50


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _round(mode: str, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    db = folder / f"{mode}.db"
    out = folder / f"{mode}.json"
    me = [sys.executable, __file__]
    consumer = subprocess.Popen(
        [*me, "consume", str(db), mode, str(out), str(args.jobs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # let start-up finish before measuring idle CPU
        cpu0 = _cpu_seconds(consumer.pid)
        time.sleep(args.idle)
        idle = (_cpu_seconds(consumer.pid) - cpu0) / args.idle * 100
        producer = subprocess.run(
            [*me, "produce", str(db), mode, str(args.jobs), str(args.rate)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        consumer.wait(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
    latencies = sorted(json.loads(out.read_text()))
    return {
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "idle_cpu_percent": idle,
        "publish_p50": float(producer.stdout.strip().splitlines()[-1]),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        db, mode, out, jobs = sys.argv[2:6]
        trio.run(_consume, db, mode, out, int(jobs))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "produce":
        db, mode, jobs, rate = sys.argv[2:6]
        trio.run(_produce, db, mode, int(jobs), float(rate))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle", type=float, default=5.0, help="s of idle CPU measurement")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        for r in range(args.rounds):
            for mode in MODES:  # interleaved
                folder = Path(tmp) / f"{mode}-{r}"
                folder.mkdir()
                results[mode].append(_round(mode, args, folder))
    print(f"{args.jobs} jobs at {args.rate:g}/s, producer in another process; {args.rounds} rounds")
    for mode, runs in results.items():
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        idle = statistics.median(r["idle_cpu_percent"] for r in runs)
        publish = statistics.median(r["publish_p50"] for r in runs)
        each = ", ".join(f"{r['p50']:.2f}/{r['p99']:.2f}" for r in runs)
        print(
            f"{mode:9}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  idle CPU {idle:5.2f} % of a core"
            f"  (the publish call itself, p50: {publish:.2f} ms; rounds p50/p99: {each})"
        )
    base = statistics.median(r["p50"] for r in results["poll"])
    new = statistics.median(r["p50"] for r in results["doorbell"])
    print(f"doorbell p50 / poll p50 = {new / base:.3f} (same run); targets p50 <= 2, p99 <= 10 ms")


if __name__ == "__main__":
    main()
