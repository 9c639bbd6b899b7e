"""In-memory drain throughput and enqueue->handler latency, next to a bare trio channel.

    .venv/bin/python bench/bench_memory.py [--messages 20000]

Throughput: N messages emitted one by one (each `await emit`, as a handler would) to a
queue step whose handler only counts; the clock runs from the first emit to the last
handler call. Baseline: the same N items through a bare trio memory channel (one send and
one receive each), measured in the same run. Latency: one message at a time, from the
emit call to the handler's first line; p50/p99 over 2,000 messages.

Rows: a standard queue at concurrency 1 and 10, and a fifo queue at concurrency 1 (one
message at a time, nothing leased ahead). `--calls` also counts the Python calls per
message of the concurrency-10 drain (cProfile's count, which does not depend on the
machine's load; each resumption of a coroutine counts as a call), from the first emit to
the last handler call.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import time
from typing import Any

import trio

from motet import Runtime, RuntimeOptions
from motet.backends import MemoryBackend
from motet.steps import load_step

# Wall time by default; --cpu measures this process's CPU time instead, which other load on
# a shared VM disturbs far less (everything here runs in one thread).
TIMER = time.perf_counter
PROFILE: cProfile.Profile | None = None  # set by --calls for one drain


async def bare_channel(n: int) -> float:
    send, receive = trio.open_memory_channel[Any](1000)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        async for _item in receive:
            count += 1
            if count == n:
                done.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        t0 = TIMER()
        for i in range(n):
            await send.send({"n": i})
        await done.wait()
        return TIMER() - t0


async def motet_drain(n: int, concurrency: int, strategy: str = "standard") -> float:
    done = trio.Event()
    count = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    step = load_step(
        {
            "name": "Sink",
            "triggers": [
                {
                    "type": "queue",
                    "topic": "bench",
                    "concurrency": concurrency,
                    "strategy": strategy,
                }
            ],
        },
        handler,
    )
    runtime = Runtime(
        [step], backend=MemoryBackend(), options=RuntimeOptions(log_sink=False, shutdown_timeout=0)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        publish = runtime.publisher.publish
        if PROFILE is not None:
            PROFILE.enable()
        t0 = TIMER()
        for i in range(n):
            await publish("bench", {"n": i}, trace_id="t")
        await done.wait()
        elapsed = TIMER() - t0
        if PROFILE is not None:
            PROFILE.disable()
        runtime.stop()
    return elapsed


async def motet_latency(samples: int) -> list[float]:
    seen = trio.Event()
    started_at = 0.0
    latencies: list[float] = []

    async def handler(data: Any, ctx: Any) -> None:
        latencies.append(time.perf_counter() - started_at)
        seen.set()

    step = load_step({"name": "Sink", "triggers": [{"type": "queue", "topic": "bench"}]}, handler)
    runtime = Runtime(
        [step], backend=MemoryBackend(), options=RuntimeOptions(log_sink=False, shutdown_timeout=0)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        for i in range(samples):
            seen = trio.Event()
            started_at = time.perf_counter()
            await runtime.publisher.publish("bench", {"n": i}, trace_id="t")
            await seen.wait()
        runtime.stop()
    return latencies


def best_of(rounds: int, fn: Any, *args: Any) -> float:
    results = []
    for _ in range(rounds):
        gc.collect()
        results.append(trio.run(fn, *args))
    return min(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", action="store_true", help="time with process CPU time")
    parser.add_argument("--calls", action="store_true", help="count Python calls per message")
    args = parser.parse_args()
    if args.cpu:
        global TIMER
        TIMER = time.process_time
        print("(rates per second of this process's CPU time)")
    n = args.messages

    channel = best_of(args.rounds, bare_channel, n)
    print(f"bare trio channel     : {n / channel:>10,.0f} msg/s  ({channel * 1e3:.1f} ms for {n})")
    # A fifo queue at concurrency 1 leases nothing ahead: its one worker leases for itself.
    for concurrency, strategy in ((1, "standard"), (10, "standard"), (1, "fifo")):
        drain = best_of(args.rounds, motet_drain, n, concurrency, strategy)
        label = f"conc {concurrency}" + (f" {strategy}" if strategy != "standard" else "")
        print(
            f"motet memory, {label:<7}: {n / drain:>10,.0f} msg/s  "
            f"({drain * 1e3:.1f} ms; {channel / drain:.2f}x the bare channel)"
        )
    if args.calls:
        global PROFILE
        PROFILE = cProfile.Profile()
        trio.run(motet_drain, n, 10)
        calls = sum(entry[1] for entry in pstats.Stats(PROFILE).stats.values())  # type: ignore[attr-defined]
        PROFILE = None
        print(f"Python calls per message, conc 10: {calls / n:.1f}")
    latencies = sorted(trio.run(motet_latency, 2000))
    p50 = statistics.median(latencies) * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    print(f"emit -> handler latency: p50 {p50:.3f} ms, p99 {p99:.3f} ms (2,000 samples)")


if __name__ == "__main__":
    main()
