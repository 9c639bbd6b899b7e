"""Durable-enqueue rate and drain throughput of the SQLite backend, next to the memory backend.

    .venv/bin/python bench/bench_sqlite.py [--messages 20000] [--producers 20] [--batch 50]

For each backend (memory, sqlite synchronous=FULL, sqlite synchronous=NORMAL), in one run:
- enqueue: `producers` tasks publish `messages` in batches of `batch` concurrently; the rate is
  messages / time until every publish returned (for sqlite: every message committed).
- drain: `consumers` tasks receive up to `receive` messages at a time and ack them; the rate
  is messages / time until every message is acknowledged (leases and acks are committed).
- pipeline: producers and consumers at the same time, publish -> receive -> ack.
Each sqlite run uses a fresh file in a temporary folder on the same disk as the project.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from motet._clock import WallClock
from motet._envelope import Envelope, QueueOptions, Subscription
from motet.backends._memory import MemoryBackend
from motet.backends._protocol import Backend
from motet.backends._sqlite import SqliteBackend


@attrs.frozen
class Load:
    messages: int
    producers: int
    batch: int
    consumers: int
    receive: int


@attrs.frozen
class Result:
    name: str
    enqueue: float  # messages/s
    drain: float
    pipeline: float
    commits: str


SUB = Subscription("bench.job", "worker", QueueOptions(lease=60.0))


def envelopes(count: int, offset: int) -> list[Envelope]:
    return [
        Envelope("bench.job", {"n": offset + i, "payload": "x" * 64}, "trace") for i in range(count)
    ]


async def produce(backend: Backend, load: Load) -> None:
    per_producer = math.ceil(load.messages / load.producers)

    async def producer(index: int) -> None:
        start = index * per_producer
        stop = min(start + per_producer, load.messages)
        for first in range(start, stop, load.batch):
            await backend.publish(envelopes(min(load.batch, stop - first), first))

    async with trio.open_nursery() as nursery:
        for index in range(load.producers):
            nursery.start_soon(producer, index)


async def consume(backend: Backend, load: Load) -> None:
    remaining = load.messages
    done = trio.Event()

    async def consumer() -> None:
        nonlocal remaining
        while remaining > 0:
            deliveries = await backend.receive(SUB, load.receive)
            await backend.ack(deliveries)
            remaining -= len(deliveries)
            if remaining <= 0:
                done.set()

    async with trio.open_nursery() as nursery:
        for _ in range(load.consumers):
            nursery.start_soon(consumer)
        await done.wait()
        nursery.cancel_scope.cancel()


async def measure(name: str, make: Callable[[], Backend], load: Load) -> Result:
    backend = make()
    clock = WallClock()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await backend.declare([SUB])
        t0 = time.perf_counter()
        await produce(backend, load)
        t1 = time.perf_counter()
        await consume(backend, load)
        t2 = time.perf_counter()
        async with trio.open_nursery() as both:
            both.start_soon(produce, backend, load)
            both.start_soon(consume, backend, load)
        t3 = time.perf_counter()
        commits = ""
        if isinstance(backend, SqliteBackend):
            stats = backend.statistics()
            commits = f"{stats.calls} calls in {stats.commits} commits"
        nursery.cancel_scope.cancel()
    n = load.messages
    return Result(name, n / (t1 - t0), n / (t2 - t1), n / (t3 - t2), commits)


async def main(load: Load, repeat: int) -> list[Result]:
    """Each backend `repeat` times, interleaved (the VM is noisy); the median of each figure."""
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as folder:
        for round_ in range(repeat):
            runs.setdefault("memory", []).append(await measure("memory", MemoryBackend, load))
            for level in ("FULL", "NORMAL"):
                path = Path(folder) / f"bench-{level}-{round_}.db"
                name = f"sqlite {level}"
                make = lambda p=path, s=level: SqliteBackend(p, synchronous=s)  # noqa: E731
                runs.setdefault(name, []).append(await measure(name, make, load))
    return [median(name, results) for name, results in runs.items()]


def median(name: str, results: list[Result]) -> Result:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return Result(
        name,
        mid([r.enqueue for r in results]),
        mid([r.drain for r in results]),
        mid([r.pipeline for r in results]),
        results[-1].commits,
    )


def report(load: Load, repeat: int, results: list[Result]) -> None:
    print(
        f"{load.messages} messages; {load.producers} producers x batches of {load.batch}; "
        f"{load.consumers} consumers x receive({load.receive}) + ack; median of {repeat} runs"
    )
    memory = results[0]
    print(
        f"{'backend':<16}{'enqueue/s':>12}{'drain/s':>12}{'pipeline/s':>12}"
        "   vs memory: enqueue  drain  pipeline   last run's commits"
    )
    for r in results:
        print(
            f"{r.name:<16}{r.enqueue:>12,.0f}{r.drain:>12,.0f}{r.pipeline:>12,.0f}"
            f"   {r.enqueue / memory.enqueue:>16.2f}x {r.drain / memory.drain:>5.2f}x"
            f" {r.pipeline / memory.pipeline:>8.2f}x   {r.commits}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--receive", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = Load(args.messages, args.producers, args.batch, args.consumers, args.receive)
    report(load, args.repeat, trio.run(main, load, args.repeat))
