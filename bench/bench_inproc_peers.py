"""motet's memory backend beside taskiq's InMemoryBroker: the in-process workload of the peer
benchmark, run interleaved so that every ratio comes from the same minutes of the machine.

    .venv/bin/python bench/bench_inproc_peers.py \\
        --taskiq-python PATH/TO/taskiq-venv/bin/python \\
        [--base-python PATH/TO/other-checkout/.venv/bin/python] [--n 20000] [--reps 3]

The workload (one definition for every target): a job is a handler whose only action is to
append one 17-byte record (kind, enqueue timestamp, handler-start timestamp) to a file in
/dev/shm with one O_APPEND write. W1: N jobs are enqueued one `await` at a time, then the
worker drains them; drain = (N - 1) / (last handler start - first handler start), cold =
N / (last handler start - worker start). motet's consumer runs on the same trio loop while
the emit loop yields, so its "drain" includes the emitting; taskiq's tasks start only once
its enqueue loop is done. W2: with the worker idle, 200 jobs at 100/s; latency = handler
start - `time.time()` just before the enqueue call, p50 and p99.

Each target runs in a fresh process of its own interpreter: `--taskiq-python` names one
that has taskiq installed, `--base-python` (optional) another checkout's motet, measured in
the same rounds so that its ratio to this one is same-run too. CPU time of the motet
process and the load average are printed with each round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

REC = struct.Struct("<Bdd")
_fd: int | None = None


def record(kind: int, ts: float) -> None:
    global _fd
    now = time.time()
    if _fd is None:
        _fd = os.open(os.environ["BENCH_REC"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, REC.pack(kind, ts, now))


def paced(n: int, rate: float) -> Iterator[float]:
    """How long to sleep before each of `n` enqueues at absolute times t0 + i / rate."""
    t0 = time.perf_counter() + 0.05
    for i in range(n):
        yield max(0.0, t0 + i / rate - time.perf_counter())


def taskiq_inmemory(max_async: int, n: int, w2n: int, rate: float) -> dict[str, float]:
    import asyncio

    from taskiq import InMemoryBroker  # type: ignore[import-not-found]

    broker = InMemoryBroker(max_async_tasks=max_async)

    @broker.task(task_name="bench.handler")  # type: ignore[misc]
    async def handler(kind: int, ts: float) -> None:
        record(kind, ts)

    async def main() -> dict[str, float]:
        await broker.startup()
        started = time.time()
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            await handler.kiq(1, time.time())
        enqueue = time.perf_counter() - t0
        await broker.wait_all()
        cpu = time.process_time() - c0
        for pause in paced(w2n, rate):
            await asyncio.sleep(pause)
            await handler.kiq(2, time.time())
        await broker.wait_all()
        await broker.shutdown()
        return {"enqueue_s": enqueue, "worker_start": started, "cpu_s": cpu}

    return asyncio.run(main())


def motet_memory(concurrency: int, n: int, w2n: int, rate: float) -> dict[str, float]:
    import trio

    import motet
    from motet import queue
    from motet.steps import load_step

    left = {1: n, 2: w2n}
    done: dict[int, trio.Event] = {}

    async def handler(job: Any, ctx: Any) -> None:
        kind = job["kind"]
        record(kind, job["ts"])
        left[kind] -= 1
        if not left[kind]:
            done[kind].set()

    step = load_step(
        {"name": "BenchJob", "triggers": [queue("bench", concurrency=concurrency)]}, handler
    )
    options = motet.RuntimeOptions(log_stream=sys.stderr)

    async def main() -> dict[str, float]:
        done.update({1: trio.Event(), 2: trio.Event()})
        async with motet.open_runtime([step], backend="memory", options=options) as runtime:
            started = time.time()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                await runtime.emit("bench", {"kind": 1, "ts": time.time()})
            enqueue = time.perf_counter() - t0
            await done[1].wait()
            cpu = time.process_time() - c0
            for pause in paced(w2n, rate):
                await trio.sleep(pause)
                await runtime.emit("bench", {"kind": 2, "ts": time.time()})
            await done[2].wait()
        return {"enqueue_s": enqueue, "worker_start": started, "cpu_s": cpu}

    return trio.run(main)


TARGETS: dict[str, Callable[[int, int, int, float], dict[str, float]]] = {
    "taskiq": taskiq_inmemory,
    "motet": motet_memory,
}


def figures(path: str, n: int, out: dict[str, float]) -> dict[str, float]:
    with open(path, "rb") as f:
        data = f.read()
    records = [REC.unpack_from(data, i * REC.size) for i in range(len(data) // REC.size)]
    w1 = sorted(r[2] for r in records if r[0] == 1)
    latency = sorted((r[2] - r[1]) * 1e3 for r in records if r[0] == 2)
    return {
        "drain": (len(w1) - 1) / (w1[-1] - w1[0]),
        "cold": len(w1) / (w1[-1] - out["worker_start"]),
        "enqueue": n / out["enqueue_s"],
        "p50": statistics.median(latency),
        "p99": latency[int(len(latency) * 0.99)],
        "cpu_us": out["cpu_s"] / n * 1e6,
    }


def run_one(
    python: str, target: str, concurrency: int, args: argparse.Namespace
) -> dict[str, float]:
    fd, path = tempfile.mkstemp(prefix="motet-bench-", suffix=".rec", dir="/dev/shm")
    os.close(fd)
    try:
        child = [python, os.path.abspath(__file__), "--child", target, str(concurrency)]
        child += [str(args.n), str(args.w2n), str(args.rate)]
        # Run from a neutral folder so each interpreter imports its own installed motet.
        done = subprocess.run(
            child,
            env=dict(os.environ, BENCH_REC=path),
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            check=True,
        )
        return figures(path, args.n, json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--taskiq-python", help="an interpreter with taskiq installed")
    parser.add_argument("--base-python", default=None)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--w2n", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        target, concurrency, n, w2n, rate = args.child
        out = TARGETS[target](int(concurrency), int(n), int(w2n), float(rate))
        print(json.dumps(out), flush=True)
        return
    if not args.taskiq_python:
        parser.error("--taskiq-python is required")
    runs = [("taskiq max_async 30", args.taskiq_python, "taskiq", 30)]
    runs += [("motet conc 10", sys.executable, "motet", 10)]
    runs += [("motet conc 1", sys.executable, "motet", 1)]
    if args.base_python:
        runs += [("base conc 10", args.base_python, "motet", 10)]
        runs += [("base conc 1", args.base_python, "motet", 1)]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in runs}
    for rep in range(args.reps):
        print(f"round {rep + 1}, load {os.getloadavg()[0]:.2f}")
        for name, python, target, concurrency in runs:
            got = run_one(python, target, concurrency, args)
            results[name].append(got)
            print(
                f"  {name:<20} drain {got['drain']:>8,.0f}/s  cold {got['cold']:>8,.0f}/s  "
                f"enqueue {got['enqueue']:>8,.0f}/s  p50 {got['p50']:.3f} ms  "
                f"p99 {got['p99']:.3f} ms  cpu {got['cpu_us']:.1f} us/job"
            )
    print(f"median of {args.reps} rounds, ratios to taskiq (drain, cold) taken round by round:")
    taskiq = results[runs[0][0]]
    for name, *_ in runs:
        mine = results[name]
        drain = statistics.median(
            m["drain"] / t["drain"] for m, t in zip(mine, taskiq, strict=True)
        )
        cold = statistics.median(m["cold"] / t["cold"] for m, t in zip(mine, taskiq, strict=True))
        p50 = statistics.median(m["p50"] for m in mine)
        print(f"  {name:<20} drain {drain:.2f}x  cold {cold:.2f}x  p50 {p50:.3f} ms")


if __name__ == "__main__":
    main()
