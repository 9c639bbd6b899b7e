"""SSE fan-out: one stream update to N subscribers, time until the last one has it.

    .venv/bin/python bench/bench_streams.py [--subscribers 1000] [--updates 20] [--backend memory]

The server (a runtime with one public stream and an HTTP step `POST /bump` that sets the
item) runs in a child process; this process opens N Server-Sent-Event connections to
`/_streams/bench/g`, waits until each has its `sync`, then, `updates` times: notes the time,
POSTs /bump, and records when each subscriber received the update. Reported per update:
time to the first and to the last delivery, and the median. Also, in-process, the hub alone
(no sockets): the same fan-out into N subscriber buffers.

Both processes share the machine's cores, so figures are for comparing runs on one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONNECT_BATCH = 50

SERVER = """
import sys, trio
from motet import RuntimeOptions, http
from motet._runtime import Runtime, running
from motet.backends import backend_from_url
from motet.console._part import serving
from motet.gateway import GatewayOptions
from motet.steps import load_step
from motet.streams import StreamConfig

async def bump(request, ctx):
    n = request.body["n"]
    await ctx.streams.bench.set("g", "item", {"n": n})
    return {"status": 204}

async def main(backend_url):
    step = load_step({"name": "Bump", "triggers": [http("POST", "/bump")]}, bump)
    runtime = Runtime(
        [step],
        backend=backend_from_url(backend_url, root="."),
        parts=serving(GatewayOptions(port=0), telemetry=False),
        options=RuntimeOptions(log_sink=False),
        streams=[StreamConfig("bench", public=True)],
    )
    async with running(runtime):
        print(runtime.gateway_urls[0], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)

trio.run(main, sys.argv[1])
"""


class Deliveries:
    """When each subscriber got each update; `complete[n]` is set once all have update n."""

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.times: dict[int, list[float]] = {}
        self.complete: dict[int, trio.Event] = {}

    def record(self, n: int) -> None:
        times = self.times.setdefault(n, [])
        times.append(time.perf_counter())
        if len(times) == self.subscribers:
            self.complete.setdefault(n, trio.Event()).set()


async def subscriber(host: str, port: int, ready: trio.Semaphore, got: Deliveries) -> None:
    stream = await trio.open_tcp_stream(host, port)
    request = f"GET /_streams/bench/g HTTP/1.1\r\nhost: {host}\r\naccept: text/event-stream\r\n\r\n"
    await stream.send_all(request.encode())
    buffer = b""
    synced = False
    async with stream:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                if b"event: sync" in block and not synced:
                    synced = True
                    ready.release()
                elif b"event: update" in block or b"event: create" in block:
                    line = next(x for x in block.split(b"\n") if x.startswith(b"data: "))
                    got.record(json.loads(line[6:])["event"]["data"]["n"])


async def fan_out(url: str, subscribers: int, updates: int) -> list[tuple[float, float, float]]:
    import httpx

    host, port = url.removeprefix("http://").split(":")
    ready = trio.Semaphore(0, max_value=subscribers)
    got = Deliveries(subscribers)
    results = []
    async with trio.open_nursery() as nursery, httpx.AsyncClient(base_url=url) as client:
        for batch in range(0, subscribers, CONNECT_BATCH):  # within the listen backlog
            count = min(CONNECT_BATCH, subscribers - batch)
            for _ in range(count):
                nursery.start_soon(subscriber, host, int(port), ready, got)
            for _ in range(count):
                await ready.acquire()
        for n in range(1, updates + 1):
            done = got.complete.setdefault(n, trio.Event())
            started = time.perf_counter()
            response = await client.post("/bump", json={"n": n})
            assert response.status_code == 204, response.text
            await done.wait()
            times = sorted(t - started for t in got.times[n])
            results.append((times[0], statistics.median(times), times[-1]))
        nursery.cancel_scope.cancel()
    return results


def hub_only(subscribers: int, updates: int) -> float:
    """Seconds per update to offer one change to N subscriber buffers (no sockets)."""
    from motet.backends._stream_records import StreamChange
    from motet.streams import StreamHub

    async def main() -> float:
        hub = StreamHub(capacity=updates + 1)
        subs = [hub.subscribe("bench", "g") for _ in range(subscribers)]
        for sub in subs:
            sub.__enter__()
        started = time.perf_counter()
        for n in range(updates):
            hub.deliver(StreamChange("bench", "g", n + 1, "update", "item", {"n": n}))
        return (time.perf_counter() - started) / updates

    return trio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--backend", default="memory", help="memory, sqlite:///path, redis")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        backend = args.backend
        if backend == "redis":  # a private redis-server, as the tests start one
            from tests._redis_server import redis_server

            backend = stack.enter_context(redis_server()).url
        results = run(backend, args.subscribers, args.updates)
    report(args.backend, args.subscribers, args.updates, results)


def run(backend: str, subscribers: int, updates: int) -> list[tuple[float, float, float]]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        return trio.run(fan_out, url, subscribers, updates)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def report(
    backend: str, subscribers: int, updates: int, results: list[tuple[float, float, float]]
) -> None:
    firsts, medians, lasts = zip(*results, strict=True)
    ms = 1000.0
    print(f"backend {backend}, {subscribers} SSE subscribers, {updates} updates")
    print(
        f"  to the first: median {statistics.median(firsts) * ms:.1f} ms; "
        f"to half: median {statistics.median(medians) * ms:.1f} ms; "
        f"to the last: median {statistics.median(lasts) * ms:.1f} ms, "
        f"best {min(lasts) * ms:.1f} ms, worst {max(lasts) * ms:.1f} ms"
    )
    per = hub_only(subscribers, updates)
    print(f"  hub alone (no sockets): {per * 1e6:.0f} us per update to {subscribers} buffers")


if __name__ == "__main__":
    main()
