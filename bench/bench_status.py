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
   scans the pending rows for the id; Redis reads its id index; memory scans its queues),
   and an unknown id;
3. Redis only: publish cost with and without the id index that PUBLISH writes (the index
   lines cut out of the script), rounds alternating, 100 messages per call.

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


async def publish_round(backend: Any, clock: WallClock, n: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, 100):
        await backend.publish(envelopes(min(100, n - start), clock))
    took = (time.perf_counter() - t0) / n
    got = await drain(backend, n)
    for start in range(0, n, 1000):
        await backend.ack(got[start : start + 1000])
    return took


def without_index(script: str) -> str:
    cut = script
    for line in (
        "  local id = envelope_id(e)\n",
        "  if id then redis.call('HSET', P .. ':mid', id, topic .. '\\n' .. ref) end\n",
    ):
        assert line in cut, line
        cut = cut.replace(line, "")
    return cut


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
            from motet.backends import _redis_lua as lua

            indexed = lua.PUBLISH
            plain = without_index(indexed)
            with_idx: list[float] = []
            without: list[float] = []
            for _ in range(args.rounds):
                lua.PUBLISH = plain
                without.append(await publish_round(backend, clock, args.messages))
                lua.PUBLISH = indexed
                with_idx.append(await publish_round(backend, clock, args.messages))
            w, wo = statistics.median(with_idx), statistics.median(without)
            print("publish, 100 per call:")
            print(f"  without id index {wo * 1e6:8.1f} us/message   (rounds {_us(without)})")
            print(f"  with id index    {w * 1e6:8.1f} us/message   (rounds {_us(with_idx)})")
            print(f"  with / without = {w / wo:.2f}")
        nursery.cancel_scope.cancel()


def _us(values: list[float]) -> str:
    return ", ".join(f"{v * 1e6:.1f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    args = parser.parse_args()
    wanted = args.backends.split(",")
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
