"""Redis backend benchmark: raw Redis Streams next to RedisBackend, in one run, on one server.

    .venv/bin/python bench/bench_redis.py [--messages 20000] [--url redis://127.0.0.1:PORT/0]

Without --url it starts a private redis-server (AOF on, appendfsync always: the setting the
backend assumes) on a free port. It prints:

1. raw Streams: XADD pipelined 100 per round trip, then XREADGROUP count=100 + one XACK of
   100 ids per batch (coredis, one process) - the ceiling for a Python client here;
2. RedisBackend drain: N messages published beforehand, drained by 1 and then 2 instance
   processes, each receiving up to 100 at a time and either acking every message from its
   own handler task (as the runtime does; the backend group-commits the acks) or acking
   each batch in one call;
3. enqueue -> receive latency at 100 messages/s: a publisher process and a consumer
   process, p50 / p99 over 1,000 messages.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motet._clock import WallClock  # noqa: E402
from motet._envelope import Envelope, QueueOptions, Subscription, new_id  # noqa: E402
from motet.backends._redis import RedisBackend  # noqa: E402

TOPIC = "bench.jobs"
SUB = Subscription(TOPIC, "worker", QueueOptions(concurrency=200))
PAYLOAD = {"order": 12345, "customer": "c-42", "items": [1, 2, 3], "note": "bench"}


# -- raw Redis Streams ---------------------------------------------------------------------


async def raw_streams(url: str, count: int) -> dict[str, float]:
    import coredis

    client = coredis.Redis.from_url(url, decode_responses=True)
    stream, group = f"raw:{new_id()[:8]}", "g"
    body = json.dumps(PAYLOAD)
    async with client:
        await client.xgroup_create(stream, group, identifier="$", mkstream=True)
        started = time.perf_counter()
        for start in range(0, count, 100):
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(min(100, count - start)):
                    pipe.xadd(stream, {"e": body})
        added = time.perf_counter()
        done = 0
        while done < count:
            got = await client.xreadgroup(group, "c1", streams={stream: ">"}, count=100)
            assert got
            ids = [entry.identifier for entry in got[stream]]
            for entry in got[stream]:
                json.loads(entry.field_values["e"])
            await client.xack(stream, group, ids)
            done += len(ids)
        drained = time.perf_counter()
        await client.delete([stream])
    return {"xadd_per_s": count / (added - started), "drain_per_s": count / (drained - added)}


# -- RedisBackend: one worker process ------------------------------------------------------


async def drain_worker(url: str, prefix: str, acks: str) -> None:
    """Drain SUB until told to stop; prints 'ready', waits for 'go' on stdin, prints a count.

    acks="each": every delivery gets its own handler task that acks it alone (what the
    runtime does; the backend merges concurrent acks); "batch": ack each received batch."""
    backend = RedisBackend(url, prefix=prefix)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())
        await backend.declare([SUB])
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        handled = 0
        limit = trio.Semaphore(SUB.options.concurrency)

        async def handle(delivery: Any) -> None:
            nonlocal handled
            handled += 1
            try:
                await backend.ack([delivery])
            finally:
                limit.release()

        async def consume_batches() -> None:
            nonlocal handled
            while True:
                deliveries = await backend.receive(SUB, 100)
                handled += len(deliveries)
                await backend.ack(deliveries)

        async def consume() -> None:
            async with trio.open_nursery() as handlers:
                while True:
                    free = 1
                    await limit.acquire()
                    await trio.lowlevel.checkpoint()  # let finished handlers free their slots
                    while free < 100 and limit.value > 0:
                        limit.acquire_nowait()  # no checkpoint per slot
                        free += 1
                    deliveries = await backend.receive(SUB, free)
                    for _ in range(free - len(deliveries)):
                        limit.release()
                    for delivery in deliveries:
                        handlers.start_soon(handle, delivery)

        nursery.start_soon(consume if acks == "each" else consume_batches)
        await trio.to_thread.run_sync(sys.stdin.readline)  # "stop"
        print(json.dumps({"handled": handled}), flush=True)
        nursery.cancel_scope.cancel()


async def latency_worker(url: str, prefix: str, count: int) -> None:
    """Receive `count` messages, printing each enqueue -> receive latency (ms) as JSON."""
    backend = RedisBackend(url, prefix=prefix)
    async with trio.open_nursery() as nursery:
        clock = WallClock()
        await nursery.start(backend.run, clock)
        await backend.declare([SUB])
        print("ready", flush=True)
        latencies: list[float] = []
        while len(latencies) < count:
            deliveries = await backend.receive(SUB, 100)
            now = clock.now()
            latencies.extend((now - d.envelope.created_at) * 1000 for d in deliveries)
            await backend.ack(deliveries)
        print(json.dumps(latencies), flush=True)
        nursery.cancel_scope.cancel()


def spawn(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        raise RuntimeError(f"worker {args} did not start: {line!r}")
    return process


async def drain(url: str, count: int, instances: int, acks: str) -> float:
    prefix = "bench" + new_id()[:8]
    args = ["--worker", "drain", "--url", url, "--prefix", prefix, "--acks", acks]
    workers = [spawn(*args) for _ in range(instances)]
    backend = RedisBackend(url, prefix=prefix)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())
        await backend.declare([SUB])
        for start in range(0, count, 500):
            batch = [Envelope(TOPIC, PAYLOAD, "bench") for _ in range(min(500, count - start))]
            await backend.publish(batch)
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        while (await backend.depth())[SUB.key].pending:
            await trio.sleep(0.02)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    handled = 0
    for worker in workers:
        out, _ = worker.communicate("stop\n", timeout=30)
        handled += json.loads(out.strip().splitlines()[-1])["handled"]
    assert handled >= count, f"handled {handled} of {count}"
    return count / elapsed


async def latency(url: str, count: int, rate: float) -> dict[str, float]:
    prefix = "bench" + new_id()[:8]
    worker = spawn(
        "--worker", "latency", "--url", url, "--prefix", prefix, "--messages", str(count)
    )
    backend = RedisBackend(url, prefix=prefix)
    async with trio.open_nursery() as nursery:
        clock = WallClock()
        await nursery.start(backend.run, clock)
        await backend.declare([SUB])
        next_at = trio.current_time()
        for _ in range(count):
            await trio.sleep_until(next_at)
            next_at += 1 / rate
            await backend.publish([Envelope(TOPIC, PAYLOAD, "bench", created_at=clock.now())])
        nursery.cancel_scope.cancel()
    out, _ = worker.communicate(timeout=60)
    values = sorted(json.loads(out.strip().splitlines()[-1]))
    return {
        "p50_ms": values[len(values) // 2],
        "p99_ms": values[int(len(values) * 0.99)],
        "max_ms": values[-1],
    }


async def main(url: str | None, count: int, appendfsync: str, repeat: int) -> None:
    if url is None:
        from tests._redis_server import redis_server

        with redis_server(appendfsync=appendfsync) as server:
            print(f"private redis-server, appendonly yes, appendfsync {appendfsync}")
            await report(server.url, count, repeat)
    else:
        await report(url, count, repeat)


async def report(url: str, count: int, repeat: int) -> None:
    print(
        f"Redis {url}, {count} messages of {len(json.dumps(PAYLOAD))} bytes of JSON; "
        f"throughputs are the best of {repeat} runs (the VM is shared and noisy)"
    )
    raws = [await raw_streams(url, count) for _ in range(repeat)]
    raw = {key: max(r[key] for r in raws) for key in raws[0]}
    print(
        f"raw Streams: XADD x100 pipelined {raw['xadd_per_s']:,.0f}/s; "
        f"XREADGROUP count=100 + XACK x100 {raw['drain_per_s']:,.0f}/s"
    )
    for acks, what in (("each", "a handler task acks each message"), ("batch", "batch acks")):
        one = max([await drain(url, count, 1, acks) for _ in range(repeat)])
        two = max([await drain(url, count, 2, acks) for _ in range(repeat)])
        print(
            f"RedisBackend drain ({what}): 1 instance {one:,.0f}/s "
            f"({one / raw['drain_per_s']:.0%} of raw); 2 instances {two:,.0f}/s ({two / one:.2f}x)"
        )
    lat = await latency(url, 1000, 100.0)
    print(f"enqueue -> receive at 100 msg/s: p50 {lat['p50_ms']:.2f} ms, "
          f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--worker", choices=["drain", "latency"])
    parser.add_argument("--prefix")
    parser.add_argument("--acks", choices=["each", "batch"], default="each")
    parser.add_argument("--repeat", type=int, default=3, help="runs per throughput figure")
    parser.add_argument(
        "--appendfsync",
        default="always",
        choices=["always", "everysec"],
        help="of the private server (always = the durability the backend assumes)",
    )
    args = parser.parse_args()
    if args.worker == "drain":
        trio.run(drain_worker, args.url, args.prefix, args.acks)
    elif args.worker == "latency":
        trio.run(latency_worker, args.url, args.prefix, args.messages)
    else:
        trio.run(main, args.url, args.messages, args.appendfsync, args.repeat)
