"""CPU that telemetry costs per recorded handler run and per HTTP request, on the main (trio)
thread and on the writer thread separately, for this checkout and, interleaved in the same
run, for another one.

    .venv/bin/python bench/bench_telemetry.py [--runs 5000] [--rounds 5] [--batch 250]
        [--prefill 0] [--against /work/wt/base/.venv/bin/python]
        [--against-src /tmp/older-checkout]

Each round runs one child process per interpreter, alternately. A child feeds `Telemetry`
the observer calls a queue job and a gateway request make (`on_run` for a handler run with
one emit and one state write attributed to it, `on_http` for a request), measured with
`time.thread_time` on the main thread, and counts Python calls per record with cProfile;
then it writes the buffered spans to a SQLite telemetry store in `--batch`-sized batches
from a worker thread, as the writer does, measured with `time.thread_time` in that thread.
`--prefill N` stores N spans first (untimed): an insert into a table near its retention
limit costs more than one into an empty table (index entries on keys that are not
time-ordered, such as trace ids clients send, land on pages SQLite's small page cache no
longer holds).
CPU time does not depend on the machine's load the way wall time does; the load average is
printed beside the figures all the same.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def _child(runs: int, batch: int, prefill: int) -> dict[str, float]:
    import attrs

    from motet._envelope import Envelope, new_id  # time-ordered ids, as the runtime's
    from motet._observer import HttpExchange
    from motet.actors._dispatcher import CURRENT_RUN, HandlerRun
    from motet.backends._protocol import StateChange
    from motet.observe import SqliteTelemetryStore, Telemetry, TelemetryOptions

    view: Any = SimpleNamespace(
        steps=[SimpleNamespace(name="ProcessPet")],
        subscriptions=[],
        clock=SimpleNamespace(now=time.time),
    )
    now = time.time()
    jobs = [
        HandlerRun(
            step="ProcessPet",
            trigger="queue",
            trace_id=new_id(),
            message_id=new_id(),
            attempt=1,
            started=now,
            duration=0.0002,
            outcome="ok",
            run_id=new_id(),
            topic="pet.created",
        )
        for i in range(runs)
    ]
    emitted = [
        Envelope(topic="pet.stored", data={"id": i}, id=new_id(), trace_id=jobs[i].trace_id)
        for i in range(runs)
    ]
    change = StateChange(
        namespace="pets", key="k", value={"id": 1}, old_value=None, event="created"
    )
    exchanges = [
        HttpExchange(
            method="POST",
            route="/pets",
            path="/pets",
            status=200,
            trace_id=new_id(),
            step="CreatePet",
            duration=0.0003,
        )
        for _ in range(runs)
    ]

    def record(telemetry: Telemetry) -> None:
        for job, envelope, exchange in zip(jobs, emitted, exchanges, strict=True):
            token = CURRENT_RUN.set(job.run_id)
            telemetry.on_envelope(envelope, "ProcessPet")
            telemetry.on_state(change)
            CURRENT_RUN.reset(token)
            telemetry.on_run(job)
            telemetry.on_http(exchange)

    def fresh() -> Telemetry:
        telemetry = Telemetry(TelemetryOptions(buffer=4 * runs))
        telemetry.on_start(view)
        return telemetry

    telemetry = fresh()
    started = time.thread_time()
    record(telemetry)
    main_cpu = time.thread_time() - started
    spans = telemetry._spans  # Span records, or SpanRow tuples where the checkout buffers rows
    rows = bool(spans) and isinstance(spans[0], tuple)

    profile = cProfile.Profile()
    profile.runcall(record, fresh())
    calls: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]

    writer_cpu = [0.0]
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteTelemetryStore(Path(folder) / "telemetry.db")
        # What the checkout's writer calls with what its observers buffer.
        store_write = store.write_rows if rows else store.write  # type: ignore[attr-defined]
        for n in range(0, prefill, len(spans)):  # untimed: a table already this full
            store_write(
                [],
                [
                    (f"{s[0]}.{n}", new_id(), *s[2:])
                    if rows
                    else attrs.evolve(s, span_id=f"{s.span_id}.{n}", trace_id=new_id())
                    for s in spans
                ],
                now=time.time(),
            )

        def write() -> None:
            begin = time.thread_time()
            for i in range(0, len(spans), batch):
                store_write([], spans[i : i + batch], now=time.time())
            writer_cpu[0] = time.thread_time() - begin

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
        store.close()
    # Two records (a job's span, a request's span) per iteration: figures are per record.
    records = 2 * runs
    return {
        "main_us": main_cpu / records * 1e6,
        "writer_us": writer_cpu[0] / records * 1e6,
        "calls": calls / records,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--against", help="another checkout's python, run interleaved")
    parser.add_argument(
        "--against-src", help="a source folder put first on the --against child's PYTHONPATH"
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="spans stored before the timed writes"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.runs, args.batch, args.prefill)))
        return
    pythons = {"this": sys.executable}
    if args.against or args.against_src:
        pythons["against"] = args.against or sys.executable
    results: dict[str, list[dict[str, float]]] = {name: [] for name in pythons}
    for _ in range(args.rounds):
        for name, python in pythons.items():
            env = dict(os.environ)
            if name == "against" and args.against_src:
                env["PYTHONPATH"] = args.against_src
            out = subprocess.run(
                [
                    *(python, __file__, "--child", "--runs", str(args.runs)),
                    *("--batch", str(args.batch), "--prefill", str(args.prefill)),
                ],
                check=True,
                env=env,
                capture_output=True,
                text=True,
            ).stdout
            results[name].append(json.loads(out))
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds x {args.runs} jobs+requests"
    )
    medians = {
        name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        for name, rows in results.items()
    }
    for name, m in medians.items():
        print(
            f"{name:8} main {m['main_us']:6.2f} us/record  writer {m['writer_us']:6.2f} us/span"
            f"  calls {m['calls']:5.1f}/record  ({pythons[name]})"
        )
    if "against" in medians:
        this, base = medians["this"], medians["against"]
        print(
            "this/against  main {:.2f}x  writer {:.2f}x  calls {:.2f}x".format(
                this["main_us"] / base["main_us"],
                this["writer_us"] / base["writer_us"],
                this["calls"] / base["calls"],
            )
        )


if __name__ == "__main__":
    main()
