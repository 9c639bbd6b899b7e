"""Message status and cancellation: what they cost the hot path, and how fast a lookup is.

    .venv/bin/python bench/bench_status.py [--messages 5000] [--rounds 5]
        [--backends memory,sqlite,redis]

Per backend (a private redis-server for Redis, AOF with appendfsync always; a temporary file
for SQLite at its default synchronous=FULL), in one process:

1. the ack path: N messages published, received 100 at a time, then settled 100 per call by
   `ack` (what a runtime with `message_retention = 0` does) or by `finish` (ack plus a kept
   settled record with a small JSON result: the default). Rounds alternate ack / finish;
   the median time per message of each, and their ratio;
2. lookup latency, median and p99 of 200 `message_status` calls: a done message (its
   settled record), a queued message behind a backlog of 0 / 1,000 / 10,000 others (SQLite
   scans the pending rows for the id; Redis scans its streams; memory scans its queues),
   and an unknown id;
3. Redis only: the memory a settled record takes;
4. (`--runtime`) a whole runtime on the memory backend (CPU time) and, with sqlite among
   the backends, on SQLite (wall time): N messages emitted one by one to a queue step
   (concurrency 10), from the first emit until the last is acked, with
   `message_retention = 0` (plain acks) and the default (records kept), the handler
   returning None or a small dict; rounds alternate, best of each.

Figures are same-run ratios on a shared, loaded machine; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motet import Envelope, QueueOptions, WallClock  # noqa: E402
from motet._status import Settlement  # noqa: E402
from motet.backends import MemoryBackend, Subscription  # noqa: E402

TOPIC = "bench.status"
SUB = Subscription(TOPIC, "worker", QueueOptions(concurrency=100))
PAYLOAD = {"order": 12345, "customer": "c-42", "items": [1, 2, 3], "note": "bench"}
RESULT = '{"total":42,"ok":true}'


def envelopes(n: int, clock: WallClock) -> list[Envelope]:
    now = clock.now()
    return [Envelope(TOPIC, PAYLOAD, "t" * 32, created_at=now) for _ in range(n)]


async def drain(backend: Any, n: int) -> list[Any]:
    got: list[Any] = []
    while len(got) < n:
        got += await backend.receive(SUB, 100)
    return got


async def ack_round(backend: Any, clock: WallClock, n: int, finish: bool) -> float:
    """Seconds per message of settling n received messages, 100 per call."""
    for start in range(0, n, 100):
        await backend.publish(envelopes(min(100, n - start), clock))
    deliveries = await drain(backend, n)
    now = clock.now()
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        batch = deliveries[start : start + 100]
        if finish:
            records = [Settlement("done", 1, now, now, now + 86_400, RESULT) for _ in batch]
            await backend.finish(batch, records)
        else:
            await backend.ack(batch)
    return (time.perf_counter() - t0) / n


async def latencies(call: Callable[[], Any], count: int = 200) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def lookups(backend: Any, clock: WallClock) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    [done] = envelopes(1, clock)
    await backend.publish([done])
    [delivery] = await drain(backend, 1)
    now = clock.now()
    await backend.finish([delivery], [Settlement("done", 1, now, now, now + 86_400, RESULT)])
    out["done (settled record)"] = await latencies(lambda: backend.message_status(done.id))
    for backlog in (0, 1_000, 10_000):
        have = 0
        while have < backlog:
            batch = min(1_000, backlog - have)
            await backend.publish(envelopes(batch, clock))
            have += batch
        [queued] = envelopes(1, clock)
        await backend.publish([queued])
        out[f"queued, backlog {backlog:,}"] = await latencies(
            lambda q=queued: backend.message_status(q.id)
        )
        for _ in range(0, backlog + 1, 1000):  # empty the queue for the next size
            got = await backend.receive(SUB, 1000)
            await backend.ack(got)
    out["unknown id"] = await latencies(lambda: backend.message_status("0" * 32))
    return out


async def bench_backend(name: str, backend: Any, args: argparse.Namespace) -> None:
    clock = WallClock()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await backend.declare([SUB])
        await ack_round(backend, clock, 500, True)  # warm up
        acks: list[float] = []
        finishes: list[float] = []
        for _ in range(args.rounds):
            acks.append(await ack_round(backend, clock, args.messages, False))
            finishes.append(await ack_round(backend, clock, args.messages, True))
        a, f = statistics.median(acks), statistics.median(finishes)
        print(f"\n## {name}")
        print(f"ack path, {args.messages} messages x {args.rounds} rounds, 100 per call:")
        print(f"  ack     {a * 1e6:8.1f} us/message   (rounds {_us(acks)})")
        print(f"  finish  {f * 1e6:8.1f} us/message   (rounds {_us(finishes)})")
        print(f"  finish / ack = {f / a:.2f}")
        print("lookup latency (200 calls), median / p99:")
        for what, (p50, p99) in (await lookups(backend, clock)).items():
            print(f"  {what:28s} {p50 * 1e3:7.3f} ms / {p99 * 1e3:7.3f} ms")
        if name == "redis":
            link = backend._link
            keys = await link.client.keys(f"{backend.prefix}:msg:*")
            sizes = [await link.client.memory_usage(key) for key in list(keys)[:200]]
            print(
                f"memory: a settled record (its P:msg key) {statistics.median(sizes):.0f} "
                f"bytes (median of {len(sizes)})"
            )

        nursery.cancel_scope.cancel()


async def runtime_round(n: int, retention: float, result: Any, kind: str = "memory") -> float:
    from motet import Runtime, RuntimeOptions
    from motet.project import ProjectConfig
    from motet.steps import load_step

    count = 0
    done = trio.Event()

    async def handler(data: Any, ctx: Any) -> Any:
        nonlocal count
        count += 1
        if count == n:
            done.set()
        return result

    trigger = {"type": "queue", "topic": "bench", "concurrency": 10}
    step = load_step({"name": "Sink", "triggers": [trigger]}, handler)
    folder = tempfile.TemporaryDirectory(prefix="motet-bench-")
    if kind == "sqlite":
        from motet.backends import SqliteBackend

        backend: Any = SqliteBackend(Path(folder.name) / "motet.db")
    else:
        backend = MemoryBackend()
    runtime = Runtime(
        [step],
        backend=backend,
        project=ProjectConfig(message_retention=retention),
        options=RuntimeOptions(log_sink=False, shutdown_timeout=0),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        publish = runtime.publisher.publish
        t0 = time.process_time() if kind == "memory" else time.perf_counter()
        for i in range(n):
            await publish("bench", {"n": i}, trace_id="t")
        await done.wait()
        while sum(d.pending for d in (await backend.depth()).values()):
            await trio.sleep(0.001 if kind == "sqlite" else 0)
        took = (time.process_time() if kind == "memory" else time.perf_counter()) - t0
        runtime.stop()
    folder.cleanup()
    return took / n


def runtime_bench(args: argparse.Namespace, kind: str = "memory") -> None:
    variants = {
        "retention 0, returns None": (0.0, None),
        "default records, returns None": (86_400.0, None),
        "default records, returns a dict": (86_400.0, {"ok": True, "n": 1}),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (retention, result) in variants.items():
            times[name].append(trio.run(runtime_round, args.messages, retention, result, kind))
    base = min(times["retention 0, returns None"])
    timer = "CPU time" if kind == "memory" else "wall time"
    print(f"\n## runtime on {kind}, {args.messages} messages, {timer}, best of {args.rounds}")
    for name, values in times.items():
        best = min(values)
        print(f"  {name:34s} {best * 1e6:6.1f} us/message  x{best / base:.2f}")


def _us(values: list[float]) -> str:
    return ", ".join(f"{v * 1e6:.1f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    parser.add_argument("--runtime", action="store_true", help="also the whole-runtime rounds")
    args = parser.parse_args()
    wanted = [b for b in args.backends.split(",") if b]
    if args.runtime:
        runtime_bench(args)
        if "sqlite" in wanted:
            runtime_bench(args, "sqlite")
    with ExitStack() as stack:
        if "memory" in wanted:
            trio.run(bench_backend, "memory", MemoryBackend(), args)
        if "sqlite" in wanted:
            from motet.backends import SqliteBackend

            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="motet-bench-"))
            trio.run(bench_backend, "sqlite", SqliteBackend(Path(folder) / "motet.db"), args)
        if "redis" in wanted:
            from motet.backends import RedisBackend
            from tests._redis_server import redis_server

            server = stack.enter_context(redis_server())
            trio.run(bench_backend, "redis", RedisBackend(server.url, prefix="bench"), args)


if __name__ == "__main__":
    main()
