"""What the fetcher hop costs an idle in-process message (target 1's W2 p50).

    .venv/bin/python bench/bench_hop_latency.py [--jobs 300] [--rate 100] [--rounds 3]

The harness's W2 on the memory backend, inside one trio run: `--jobs` emits paced at `--rate`
per second, each carrying its `time.time()`; the handler records how long after the emit it
started. Three step configurations, interleaved round by round:

- `c10`: the default (concurrency 10, four deliveries leased ahead per slot): the step's
  fetcher leases and hands each delivery to a parked worker, two task steps after the emit.
- `c1`: concurrency 1, prefetch left at its default (4): the same fetcher and worker.
- `solo`: concurrency 1, prefetch 0: the step actor's solo worker leases for itself, one task
  step after the emit, the shape a leader/follower worker pool would give every step.

A backlog of 200 is drained first so that prefetch is engaged (the step actor leases ahead
only once handlers have proven fast), as after a W1 drain in the harness.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import trio

import motet
from motet import queue
from motet.steps import load_step

VARIANTS = {"c10": (10, None), "c1": (1, None), "solo": (1, 0)}
WARM = 200


def run(concurrency: int, prefetch: int | None, jobs: int, rate: float) -> list[float]:
    """Emit → handler-start latencies (s) of `jobs` paced emits."""
    latencies: list[float] = []
    done = trio.Event()

    async def handler(job: Any, ctx: Any) -> None:
        latencies.append(time.time() - job["ts"])
        if len(latencies) == WARM + jobs:
            done.set()

    extra = {} if prefetch is None else {"prefetch": prefetch}
    trigger = queue("bench", concurrency=concurrency, **extra)
    step = load_step({"name": "Bench", "triggers": [trigger]}, handler)
    options = motet.RuntimeOptions(log_stream=sys.stderr)

    async def main() -> None:
        async with motet.open_runtime([step], backend="memory", options=options) as runtime:
            for _ in range(WARM):
                await runtime.emit("bench", {"ts": time.time()})
            start = trio.current_time()
            for i in range(jobs):
                await trio.sleep_until(start + 0.05 + i / rate)
                await runtime.emit("bench", {"ts": time.time()})
            await done.wait()

    trio.run(main)
    return latencies[WARM:]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (concurrency, prefetch) in VARIANTS.items():
            lat = run(concurrency, prefetch, args.jobs, args.rate)
            figures[name].append((percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3))
    print(f"{args.jobs} emits at {args.rate:g}/s, {args.rounds} rounds (p50 and p99 per round, ms)")
    base = sorted(p50 for p50, _ in figures["c10"])[len(figures["c10"]) // 2]
    for name, rows in figures.items():
        p50s = " ".join(f"{p50:.3f}" for p50, _ in rows)
        p99s = " ".join(f"{p99:.3f}" for _, p99 in rows)
        median = sorted(p50 for p50, _ in rows)[len(rows) // 2]
        print(f"{name:5s} p50 {p50s}  p99 {p99s}  median p50 {median / base:.2f}x c10's")


if __name__ == "__main__":
    main()
