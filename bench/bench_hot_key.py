"""Hot-key state writes: many clients incrementing one key, Redis next to SQLite (issue 11 #3).

    .venv/bin/python bench/bench_hot_key.py [--clients 50] [--writes 40] [--instances 1]

Each client is a trio task that calls `ctx.state.update("hits", "hot", [increment count])`
(through `StateStore`, as a handler does) `--writes` times in a row; with `--instances 2`
the clients are split over two backend objects sharing the storage (two instances' worth of
connections and writers, in one process). It prints, per backend, writes per second and the
p50 / p99 latency of one write, and checks that every increment landed.

Redis: a private redis-server (AOF on, appendfsync always, the setting the backend assumes)
on a free port, started by the script. SQLite: a fresh file in a temp folder, WAL,
synchronous FULL (the backend's defaults).

To measure the code before a change, run the same script with the older tree first on the
path: `PYTHONPATH=/path/to/old/checkout python bench/bench_hot_key.py` (the script only uses
`StateStore`, `StateWrite` and the backends' constructors, which both have).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(ROOT))
else:
    sys.path.append(str(ROOT))  # motet from PYTHONPATH; tests._redis_server from here

import motet  # noqa: E402
from motet import WallClock  # noqa: E402
from motet.backends import RedisBackend, SqliteBackend  # noqa: E402
from motet.state import StateStore  # noqa: E402

OPS = [{"op": "increment", "path": "count"}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def hammer(backends: list[Any], clients: int, writes: int) -> dict[str, float]:
    latencies: list[float] = []
    stores = [StateStore(b, lambda v: v, "bench") for b in backends]

    async def client(n: int) -> None:
        store = stores[n % len(stores)]
        for _ in range(writes):
            started = time.perf_counter()
            await store.update("hits", "hot", OPS)
            latencies.append(time.perf_counter() - started)

    await stores[0].delete("hits", "hot")
    started, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        for n in range(clients):
            nursery.start_soon(client, n)
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu
    final = await stores[-1].get("hits", "hot")
    expected = clients * writes
    if final != {"count": expected}:
        raise SystemExit(f"lost increments: expected count {expected}, got {final}")
    return {
        "rate": expected / took,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "max": max(latencies) * 1000,
        "cpu": cpu / took,  # cores this process kept busy (the clients and the backend)
    }


async def run_backend(make: Any, instances: int, clients: int, writes: int) -> dict[str, float]:
    clock = WallClock()
    async with trio.open_nursery() as nursery:
        backends = [await nursery.start(make().run, clock) for _ in range(instances)]
        await hammer(backends, clients, max(1, writes // 10))  # warm-up: connections, scripts
        result = await hammer(backends, clients, writes)
        nursery.cancel_scope.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--writes", type=int, default=40, help="per client")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--only", choices=["redis", "sqlite"])
    args = parser.parse_args()
    from tests._redis_server import redis_server

    print(f"motet from {Path(motet.__file__).parent}")
    print(f"{args.clients} clients x {args.writes} increments of one key, {args.instances} inst.")
    with tempfile.TemporaryDirectory() as folder, redis_server() as server:
        makers = {
            "sqlite": lambda: SqliteBackend(Path(folder) / "motet.db"),
            "redis": lambda: RedisBackend(server.url, prefix="bench"),
        }
        for name, make in makers.items():
            if args.only and name != args.only:
                continue
            r = trio.run(run_backend, make, args.instances, args.clients, args.writes)
            print(
                f"{name:7} {r['rate']:8.0f} writes/s   p50 {r['p50']:7.1f} ms   "
                f"p99 {r['p99']:7.1f} ms   max {r['max']:7.1f} ms   "
                f"bench process {r['cpu']:.2f} cores"
            )


if __name__ == "__main__":
    main()
