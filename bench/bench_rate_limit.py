"""Rate limits: what a limit lets through, what it costs while it holds messages back, and
what it costs a queue that has none.

    .venv/bin/python bench/bench_rate_limit.py [--seconds 3] [--messages 20000] [--cpu]
        [--backends memory,sqlite,redis] [--skip-overhead] [--skip-limited]

1. Overhead (memory backend, N messages emitted one by one to a queue step whose handler
   only counts, concurrency 10, best of 5 rounds): no rate limit, next to a limit so high
   it never holds anything back ("100000000/s", burst 1000): the second pays for the
   token bucket on every lease. A queue without a limit has no limiter at all (the step
   actor has no gate; the only new code on its path is one `is None` test per lease
   batch), so comparing this tree's first figure with another tree's is the overhead.
2. Under a limit (real time, each backend): a backlog of messages for a step limited to
   50/s and to 500/s (concurrency 20, handler does nothing), run for --seconds; the
   achieved rate is (starts - 1) / (last start - first start), and the CPU this process
   used per second shows that a throttled actor sleeps until its next token instead of
   polling. Redis: a private redis-server (AOF, appendfsync always) on a free port.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motet import Runtime, RuntimeOptions  # noqa: E402
from motet.backends import MemoryBackend, RedisBackend, SqliteBackend  # noqa: E402
from motet.backends._protocol import Backend  # noqa: E402
from motet.steps import load_step  # noqa: E402

TIMER = time.perf_counter


def sink(name: str, handler: Any, **options: Any) -> Any:
    trigger = {"type": "queue", "topic": "bench", **options}
    return load_step({"name": name, "triggers": [trigger]}, handler)


async def drain(n: int, rate_limit: Any) -> float:
    done = trio.Event()
    count = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    options: dict[str, Any] = {"concurrency": 10}
    if rate_limit is not None:
        options["rate_limit"] = rate_limit
    runtime = Runtime(
        [sink("Sink", handler, **options)],
        backend=MemoryBackend(),
        options=RuntimeOptions(log_sink=False, shutdown_timeout=0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        publish = runtime.publisher.publish
        t0 = TIMER()
        for i in range(n):
            await publish("bench", {"n": i}, trace_id="t")
        await done.wait()
        elapsed = TIMER() - t0
        runtime.stop()
    return elapsed


def best_of(rounds: int, fn: Any, *args: Any) -> float:
    results = []
    for _ in range(rounds):
        gc.collect()
        results.append(trio.run(fn, *args))
    return min(results)


async def limited(backend: Backend, rate: str, per_second: int, seconds: float) -> str:
    starts: list[float] = []

    async def handler(data: Any, ctx: Any) -> None:
        starts.append(time.perf_counter())

    step = sink("Limited", handler, rate_limit=rate, concurrency=20)
    runtime = Runtime(
        [step], backend=backend, options=RuntimeOptions(log_sink=False, shutdown_timeout=0)
    )
    backlog = int(per_second * seconds * 1.5) + 10
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        for i in range(0, backlog, 100):
            batch = [
                runtime.publisher.envelope("bench", {"n": j}, trace_id="t")
                for j in range(i, min(i + 100, backlog))
            ]
            await runtime.publisher.publish_envelopes(batch)
        await trio.sleep(0.2)  # settle in: the first token, the first lease
        starts.clear()
        cpu0 = time.process_time()
        await trio.sleep(seconds)
        cpu = time.process_time() - cpu0
        runtime.stop()
    rate_seen = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    return (
        f"{backend.name:<6} {rate:>6}: {rate_seen:7.1f} starts/s "
        f"({rate_seen / per_second:.3f} of the limit, {len(starts)} starts), "
        f"CPU {cpu / seconds * 100:4.1f} % of one core"
    )


async def under_limits(backends: list[str], seconds: float) -> None:
    from tests._redis_server import redis_server

    for name in backends:
        for rate, per_second in (("50/s", 50), ("500/s", 500)):
            if name == "memory":
                print(await limited(MemoryBackend(), rate, per_second, seconds))
            elif name == "sqlite":
                with tempfile.TemporaryDirectory() as folder:
                    backend = SqliteBackend(Path(folder) / "bench.db")
                    print(await limited(backend, rate, per_second, seconds))
            else:
                with redis_server() as server:
                    backend = RedisBackend(server.url, prefix="bench")
                    print(await limited(backend, rate, per_second, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    parser.add_argument("--cpu", action="store_true", help="time drains with process CPU time")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    if args.cpu:
        global TIMER
        TIMER = time.process_time
    n = args.messages
    if not args.skip_overhead:
        free = best_of(args.rounds, drain, n, None)
        print(f"no rate limit          : {n / free:>9,.0f} msg/s")
        huge = best_of(args.rounds, drain, n, {"rate": "100000000/s", "burst": 1000})
        print(f"limit that never holds : {n / huge:>9,.0f} msg/s ({huge / free:.2f}x the time)")
    if not args.skip_limited:
        trio.run(under_limits, args.backends.split(","), args.seconds)


if __name__ == "__main__":
    main()
