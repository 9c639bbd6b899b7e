"""What a delayed emit costs next to an immediate one (and a keyed one), per backend.

    .venv/bin/python bench/bench_later.py [--emits 1000] [--rounds 11] \
        [--backends memory,sqlite,redis]

Each emit goes through the runtime's `Publisher` (what `ctx.emit` calls) to a started
backend with one subscription on the topic: `immediate` is `publish(topic, data)`,
`delayed` adds `delay=3600` (kept aside until due), `keyed` adds a fresh idempotency key.
Two ways per kind: one emit after another (`seq`: the latency of one emit), and 50 tasks
emitting at once (`x50`: what group commit makes of a burst); each as wall time and as this
process's CPU time (`cpu`: steadier on a shared machine; Redis's own work is not in it).
Rounds alternate the kinds; the figure is the median round, in microseconds per emit, with
the ratio to `immediate` of the same run (only same-run ratios mean much here). SQLite runs at
its default `synchronous = FULL` on a temporary file; Redis on a private redis-server with
`appendfsync always` (started here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motet import QueueOptions, WallClock  # noqa: E402
from motet._envelope import Subscription, new_id, random_id  # noqa: E402
from motet.actors._publisher import Publisher  # noqa: E402
from motet.backends import MemoryBackend, RedisBackend  # noqa: E402
from motet.backends._sqlite import SqliteBackend  # noqa: E402

TOPIC = "bench.later"
DATA = {"order": 12345, "customer": "c-42", "items": [1, 2, 3], "note": "bench"}
KINDS = ("immediate", "delayed", "keyed")


def options(kind: str) -> dict[str, Any]:
    if kind == "delayed":
        return {"delay": 3600}
    if kind == "keyed":
        return {"key": new_id()}
    return {}


async def run_emits(publisher: Publisher, kind: str, count: int, tasks: int) -> tuple[float, float]:
    """Seconds (wall, CPU of this process) for `count` emits of `kind`, from `tasks` tasks."""

    async def emitter(n: int) -> None:
        for _ in range(n):
            await publisher.publish(TOPIC, DATA, trace_id="bench", **options(kind))

    started, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(emitter, count // tasks)
    return time.perf_counter() - started, time.process_time() - cpu


MODES = ("seq", "x50", "seq cpu", "x50 cpu")


async def bench(backend: Any, emits: int, rounds: int) -> dict[str, dict[str, float]]:
    clock = WallClock()
    sub = Subscription(TOPIC, "worker", QueueOptions())
    results: dict[str, dict[str, list[float]]] = {mode: {k: [] for k in KINDS} for mode in MODES}
    async with trio.open_nursery() as nursery:
        started = await nursery.start(backend.run, clock)
        await started.declare([sub])
        publisher = Publisher(started, clock, lambda value: value, [sub])
        await run_emits(publisher, "immediate", 200, 1)  # warm up
        for round_ in range(rounds):
            order = KINDS if round_ % 2 == 0 else tuple(reversed(KINDS))
            for mode, tasks in (("seq", 1), ("x50", 50)):
                for kind in order:
                    wall, cpu = await run_emits(publisher, kind, emits, tasks)
                    results[mode][kind].append(wall / emits * 1e6)
                    results[mode + " cpu"][kind].append(cpu / emits * 1e6)
        nursery.cancel_scope.cancel()
    return {
        mode: {kind: statistics.median(values) for kind, values in by_kind.items()}
        for mode, by_kind in results.items()
    }


def report(name: str, figures: dict[str, dict[str, float]]) -> None:
    for mode, by_kind in figures.items():
        base = by_kind["immediate"]
        cells = "  ".join(
            f"{kind} {us:8.1f} us ({us / base:4.2f}x)" for kind, us in by_kind.items()
        )
        print(f"{name:7} {mode:8} {cells}", flush=True)


def make(name: str, folder: Path, redis_url: str | None) -> Any:
    if name == "memory":
        return MemoryBackend()
    if name == "sqlite":
        return SqliteBackend(folder / f"bench-{random_id()[:8]}.db")
    assert redis_url is not None
    return RedisBackend(redis_url, prefix="b" + random_id()[:10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emits", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--backends", default="memory,sqlite,redis")
    args = parser.parse_args()
    names = args.backends.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "redis" in names:
            from tests._redis_server import redis_server

            with redis_server() as server:
                for name in names:
                    emits = args.emits if name != "memory" else args.emits * 4
                    report(
                        name, trio.run(bench, make(name, folder, server.url), emits, args.rounds)
                    )
        else:
            for name in names:
                emits = args.emits if name != "memory" else args.emits * 4
                report(name, trio.run(bench, make(name, folder, None), emits, args.rounds))


if __name__ == "__main__":
    main()
