"""Durable-enqueue rate and drain throughput of the SQLite backend, next to the memory backend.

    .venv/bin/python bench/bench_sqlite.py [--messages 20000] [--producers 20] [--batch 50]

For each backend (memory, sqlite synchronous=FULL, sqlite synchronous=NORMAL), in one run:
- enqueue: `producers` tasks publish `messages` in batches of `batch` concurrently; the rate is
  messages / time until every publish returned (for sqlite: every message committed).
- drain: `consumers` tasks receive up to `receive` messages at a time and ack them; the rate
  is messages / time until every message is acknowledged (leases and acks are committed).
- pipeline: producers and consumers at the same time, publish -> receive -> ack.
- runtime: the whole motet Runtime: `emitters` tasks each emit one message at a time (as
  handlers and HTTP steps do: every emit waits for its commit) to a queue step of
  `concurrency` whose handler only counts; messages / time until the last handler ran.
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
from typing import Any

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from motet import Envelope, QueueOptions, Runtime, RuntimeOptions, WallClock
from motet.backends import Backend, MemoryBackend, SqliteBackend, SqliteOptions, Subscription
from motet.steps import load_step


@attrs.frozen
class Load:
    messages: int
    producers: int
    batch: int
    consumers: int
    receive: int
    emitters: int
    concurrency: int


@attrs.frozen
class Result:
    name: str
    enqueue: float  # messages/s
    drain: float
    pipeline: float
    runtime: float
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
    runtime = n / await through_runtime(make(), load)
    return Result(name, n / (t1 - t0), n / (t2 - t1), n / (t3 - t2), runtime, commits)


async def through_runtime(backend: Backend, load: Load) -> float:
    """Seconds from the first emit to the last handler call, through motet's Runtime."""
    done = trio.Event()
    count = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal count
        count += 1
        if count == load.messages:
            done.set()

    trigger = {"type": "queue", "topic": "bench.rt", "concurrency": load.concurrency}
    step = load_step({"name": "Sink", "triggers": [trigger]}, handler)
    runtime = Runtime(
        [step], backend=backend, options=RuntimeOptions(log_sink=False, shutdown_timeout=0)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        assert runtime.publisher is not None
        publish = runtime.publisher.publish

        async def emitter(first: int) -> None:
            for i in range(first, load.messages, load.emitters):
                await publish("bench.rt", {"n": i}, trace_id="bench")

        t0 = time.perf_counter()
        for first in range(load.emitters):
            nursery.start_soon(emitter, first)
        await done.wait()
        elapsed = time.perf_counter() - t0
        runtime.stop()
    return elapsed


async def main(load: Load, repeat: int) -> list[Result]:
    """Each backend `repeat` times, interleaved (the VM is noisy); the median of each figure."""
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as folder:
        for round_ in range(repeat):
            runs.setdefault("memory", []).append(await measure("memory", MemoryBackend, load))
            for level in ("FULL", "NORMAL"):
                path = Path(folder) / f"bench-{level}-{round_}.db"
                name = f"sqlite {level}"
                make = lambda p=path, s=level: SqliteBackend(p, SqliteOptions(synchronous=s))  # noqa: E731
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
        mid([r.runtime for r in results]),
        results[-1].commits,
    )


def report(load: Load, repeat: int, results: list[Result]) -> None:
    print(
        f"{load.messages} messages, median of {repeat} interleaved runs. enqueue: "
        f"{load.producers} producers x publish({load.batch}); drain: {load.consumers} consumers "
        f"x receive({load.receive}) + ack; pipeline: both at once; runtime: {load.emitters} "
        f"emitters x emit(1) -> queue step, concurrency {load.concurrency}"
    )
    memory = results[0]
    figures = ("enqueue", "drain", "pipeline", "runtime")
    print(f"{'backend':<14}" + "".join(f"{f + '/s':>12}" for f in figures) + "   vs memory")
    for r in results:
        values = [getattr(r, f) for f in figures]
        ratios = " ".join(
            f"{v / getattr(memory, f):.2f}x" for v, f in zip(values, figures, strict=True)
        )
        print(f"{r.name:<14}" + "".join(f"{v:>12,.0f}" for v in values) + f"   {ratios}")
    print(
        "sqlite commits (last run, batch phases): "
        + "; ".join(f"{r.name}: {r.commits}" for r in results if r.commits)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--producers", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--receive", type=int, default=100)
    parser.add_argument("--emitters", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = Load(
        args.messages,
        args.producers,
        args.batch,
        args.consumers,
        args.receive,
        args.emitters,
        args.concurrency,
    )
    report(load, args.repeat, trio.run(main, load, args.repeat))
