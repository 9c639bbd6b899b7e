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
3. latency at 100 messages/s, p50 / p99 over 1,000 messages, a publisher process and a
   consumer process each: raw Streams first (XADD -> a blocking XREADGROUP, over the same
   hiredis connection the backend uses: the floor for any client here), then
   RedisBackend publish -> receive, then publish -> the first line of a step's handler in
   a motet runtime on Redis (what a user sees). The time is taken with time.time() in both
   processes, just before the publish and at arrival.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motet import Envelope, QueueOptions, Runtime, RuntimeOptions, WallClock  # noqa: E402
from motet.backends import RedisBackend, Subscription  # noqa: E402

# White-box: this bench also measures the backend's own wire against plain coredis.
from motet.backends._redis_link import import_coredis  # noqa: E402
from motet.backends._redis_wire import Address, Wire  # noqa: E402
from motet.steps import load_step  # noqa: E402

TOPIC = "bench.jobs"
SUB = Subscription(TOPIC, "worker", QueueOptions(concurrency=200))
PAYLOAD = {"order": 12345, "customer": "c-42", "items": [1, 2, 3], "note": "bench"}


# -- raw Redis Streams ---------------------------------------------------------------------


async def raw_streams(url: str, count: int) -> dict[str, float]:
    """Batched XADD, then XREADGROUP count=100 + one XACK per batch, through coredis and
    through the hiredis Wire the backend's hot path uses (the faster of the two is the
    ceiling a Python client reaches here)."""
    import coredis

    body = json.dumps(PAYLOAD)
    figures: dict[str, float] = {}
    client = coredis.Redis.from_url(url, decode_responses=True)
    stream, group = f"raw:{uuid.uuid4().hex[:8]}", "g"
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
    figures["coredis_xadd_per_s"] = count / (added - started)
    figures["coredis_drain_per_s"] = count / (drained - added)

    stream = f"raw:{uuid.uuid4().hex[:8]}"
    async with trio.open_nursery() as nursery:
        wire = Wire(Address.parse(url), nursery, 5.0)
        await wire.call("XGROUP", "CREATE", stream, group, "$", "MKSTREAM")
        started = time.perf_counter()
        for start in range(0, count, 100):
            await wire.calls(
                [("XADD", stream, "*", "e", body) for _ in range(min(100, count - start))]
            )
        added = time.perf_counter()
        done = 0
        while done < count:
            reply = await wire.call(
                "XREADGROUP", "GROUP", group, "c1", "COUNT", 100, "STREAMS", stream, ">"
            )
            entries = reply[0][1]
            for _, values in entries:
                json.loads(values[1])
            await wire.call("XACK", stream, group, *[ref for ref, _ in entries])
            done += len(entries)
        drained = time.perf_counter()
        await wire.call("DEL", stream)
        await wire.aclose()
        nursery.cancel_scope.cancel()
    figures["wire_xadd_per_s"] = count / (added - started)
    figures["wire_drain_per_s"] = count / (drained - added)
    figures["drain_per_s"] = max(figures["coredis_drain_per_s"], figures["wire_drain_per_s"])
    return figures


# -- RedisBackend: one worker process ------------------------------------------------------


async def drain_worker(url: str, prefix: str, acks: str) -> None:
    """Drain SUB until told to stop; prints 'ready', waits for 'go' on stdin, prints a count.

    acks="each": every delivery gets its own handler task that acks it alone (what the
    runtime does; the backend merges concurrent acks); "batch": ack each received batch."""
    if acks == "runtime":
        await runtime_drain_worker(url, prefix)
        return
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


async def runtime_drain_worker(url: str, prefix: str) -> None:
    """A motet runtime on Redis with one queue step (concurrency 100) whose handler counts:
    the step actor leases, runs handlers and acks in batches, as for any user's step."""
    handled = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal handled
        handled += 1

    trigger = {"type": "queue", "topic": TOPIC, "concurrency": 100}
    config = {"name": SUB.step, "triggers": [trigger]}
    options = RuntimeOptions(log_sink=False, shutdown_timeout=0)
    runtime = Runtime(
        [load_step(config, handler)], backend=RedisBackend(url, prefix=prefix), options=options
    )
    import_coredis()  # once per process (~0.3 s), not part of what is measured
    print("ready", flush=True)
    async with trio.open_nursery() as nursery:
        # Started on "go" (it leases at once), so the time includes its start: connecting,
        # loading the scripts, declaring (a few ms, printed to stderr).
        await trio.to_thread.run_sync(sys.stdin.readline)
        began = time.perf_counter()
        await nursery.start(runtime.run)
        print(f"runtime started in {(time.perf_counter() - began) * 1000:.0f} ms", file=sys.stderr)
        await trio.to_thread.run_sync(sys.stdin.readline)  # "stop"
        print(json.dumps({"handled": handled}), flush=True)
        nursery.cancel_scope.cancel()


async def latency_worker(url: str, prefix: str, count: int, what: str) -> None:
    """Take `count` messages and print each publish -> arrival latency (ms) as JSON. `what`:
    "raw" (a blocking XREADGROUP), "receive" (RedisBackend.receive) or "handler" (a step)."""
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        if what == "raw":
            wire = Wire(Address.parse(url), nursery, 5.0, pipelined=False)
            stream = f"{prefix}:raw"
            await wire.call("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
            print("ready", flush=True)
            while len(latencies) < count:
                reply = await wire.call(
                    "XREADGROUP", "GROUP", "g", "c", "COUNT", 100, "BLOCK", 1000,
                    "STREAMS", stream, ">",
                )  # fmt: skip
                now = time.time()
                if reply:
                    entries = reply[0][1]
                    latencies.extend((now - float(values[1])) * 1000 for _, values in entries)
                    await wire.call("XACK", stream, "g", *[ref for ref, _ in entries])
        elif what == "receive":
            backend = RedisBackend(url, prefix=prefix)
            await nursery.start(backend.run, WallClock())
            await backend.declare([SUB])
            print("ready", flush=True)
            while len(latencies) < count:
                deliveries = await backend.receive(SUB, 100)
                now = time.time()
                latencies.extend((now - d.envelope.data["sent"]) * 1000 for d in deliveries)
                await backend.ack(deliveries)
        else:
            enough = trio.Event()

            async def handler(data: Any, ctx: Any) -> None:
                latencies.append((time.time() - data["sent"]) * 1000)
                if len(latencies) >= count:
                    enough.set()

            step = load_step(
                {"name": "Timed", "triggers": [{"type": "queue", "topic": TOPIC}]}, handler
            )
            options = RuntimeOptions(log_sink=False, shutdown_timeout=0)
            runtime = Runtime([step], backend=RedisBackend(url, prefix=prefix), options=options)
            await nursery.start(runtime.run)
            print("ready", flush=True)
            await enough.wait()
        print(json.dumps(latencies[:count]), flush=True)
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


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def redis_cpu(backend: RedisBackend) -> float:
    assert backend._link is not None
    info = await backend._link.wire.call("INFO", "cpu")
    values = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(values["used_cpu_sys"]) + float(values["used_cpu_user"])


async def cpu_used(workers: list[subprocess.Popen[str]], backend: RedisBackend) -> list[float]:
    """CPU seconds used so far by the worker processes, redis-server and this process."""
    return [
        sum(process_cpu(w.pid) for w in workers),
        await redis_cpu(backend),
        time.process_time(),
    ]


async def drain(url: str, count: int, instances: int, acks: str) -> tuple[float, list[float]]:
    """Messages per second, and how many CPU cores were busy meanwhile: the instances,
    redis-server and this process."""
    prefix = "bench" + uuid.uuid4().hex[:8]
    args = ["--worker", "drain", "--url", url, "--prefix", prefix, "--acks", acks]
    workers = [spawn(*args) for _ in range(instances)]
    backend = RedisBackend(url, prefix=prefix)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())
        await backend.declare([SUB])
        for start in range(0, count, 500):
            batch = [Envelope(TOPIC, PAYLOAD, "bench") for _ in range(min(500, count - start))]
            await backend.publish(batch)
        cpu_before = await cpu_used(workers, backend)
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        while (await backend.depth())[SUB.key].pending:
            await trio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu_after = await cpu_used(workers, backend)
        nursery.cancel_scope.cancel()
    handled = 0
    for worker in workers:
        out, _ = worker.communicate("stop\n", timeout=30)
        handled += json.loads(out.strip().splitlines()[-1])["handled"]
    assert handled >= count, f"handled {handled} of {count}"
    return count / elapsed, [(a - b) / elapsed for a, b in zip(cpu_after, cpu_before, strict=True)]


async def latency(url: str, count: int, rate: float, what: str) -> dict[str, float]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    worker = spawn(
        "--worker", "latency", "--url", url, "--prefix", prefix, "--messages", str(count),
        "--what", what,
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        if what == "raw":
            wire = Wire(Address.parse(url), nursery, 5.0)
            stream = f"{prefix}:raw"

            async def send() -> None:
                await wire.call("XADD", stream, "*", "sent", repr(time.time()))
        else:
            backend = RedisBackend(url, prefix=prefix)
            await nursery.start(backend.run, WallClock())

            async def send() -> None:
                sent = time.time()
                await backend.publish([Envelope(TOPIC, {"sent": sent}, "bench")])

        next_at = trio.current_time()
        for _ in range(count):
            await trio.sleep_until(next_at)
            next_at += 1 / rate
            await send()
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


def busy(cores: list[float]) -> str:
    instances, redis, bench = cores
    return (
        f"{sum(cores):.1f} of {os.cpu_count()} cores busy: instances {instances:.2f}, "
        f"redis-server {redis:.2f}, bench {bench:.2f}"
    )


async def report(url: str, count: int, repeat: int) -> None:
    print(
        f"Redis {url}, {count} messages of {len(json.dumps(PAYLOAD))} bytes of JSON; "
        f"throughputs are the best of {repeat} runs (the VM is shared and noisy)"
    )
    raws = [await raw_streams(url, count) for _ in range(repeat)]
    raw = {key: max(r[key] for r in raws) for key in raws[0]}
    for client in ("coredis", "wire"):
        name = "coredis" if client == "coredis" else "hiredis Wire"
        print(
            f"raw Streams through {name}: XADD x100 pipelined {raw[client + '_xadd_per_s']:,.0f}/s;"
            f" XREADGROUP count=100 + XACK x100 {raw[client + '_drain_per_s']:,.0f}/s"
        )
    for acks, what in (
        ("runtime", "a motet runtime, one step of concurrency 100"),
        ("each", "a handler task acks each message"),
        ("batch", "batch acks"),
    ):
        one, one_busy = max([await drain(url, count, 1, acks) for _ in range(repeat)])
        two, two_busy = max([await drain(url, count, 2, acks) for _ in range(repeat)])
        print(
            f"RedisBackend drain ({what}): 1 instance {one:,.0f}/s "
            f"({one / raw['drain_per_s']:.0%} of raw, {busy(one_busy)}); "
            f"2 instances {two:,.0f}/s ({two / one:.2f}x, {busy(two_busy)})"
        )
    for what, label in (
        ("raw", "raw XADD -> blocking XREADGROUP"),
        ("receive", "RedisBackend publish -> receive"),
        ("handler", "publish -> step handler (motet runtime)"),
    ):
        lat = await latency(url, 1000, 100.0, what)
        print(f"latency at 100 msg/s, {label}: p50 {lat['p50_ms']:.2f} ms, "
              f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--worker", choices=["drain", "latency"])
    parser.add_argument("--prefix")
    parser.add_argument("--acks", choices=["runtime", "each", "batch"], default="each")
    parser.add_argument("--what", choices=["raw", "receive", "handler"], default="receive")
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
        trio.run(latency_worker, args.url, args.prefix, args.messages, args.what)
    else:
        trio.run(main, args.url, args.messages, args.appendfsync, args.repeat)
