"""Slow readers: N clients request a big response and never read it. Server RSS with a send
timeout against without one (without one, 100 clients x 8 MB once pinned 1.6 GiB).

    .venv/bin/python bench/bench_slow_readers.py [--clients 100] [--mib 8] [--send-timeout 2]

Runs the gateway in this process twice (send_timeout as given, then 1000 s, i.e. none within
the run) and prints RSS before, 1 s after the requests, and after the timeout has passed.
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import Any

import trio

from motet.gateway import GatewayOptions, build_app, serve
from motet.steps import HttpTrigger, Step, make_converter


class Invoker:
    async def invoke_http(self, step: Step, trigger: HttpTrigger, request: Any) -> Any:
        return await step.handler(request, None)

    def log_error(self, message: str, **fields: Any) -> None:
        print(message)


def rss_mib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


async def run(clients: int, mib: int, send_timeout: float) -> None:
    async def big(request: Any, ctx: Any) -> Any:
        body = b"x" * (mib << 20)  # built per request, as a serialized answer is
        return {
            "status": 200,
            "body": body,
            "headers": {"content-type": "application/octet-stream"},
        }

    step = Step(name="big", handler=big, triggers=(HttpTrigger("GET", "/big"),))
    app = build_app([step], Invoker(), converter=make_converter())
    options = GatewayOptions(port=0, send_timeout=send_timeout, error_log=None)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            functools.partial(serve, app, options, shutdown_trigger=stop.wait)
        )
        port = int(urls[0].rsplit(":", 1)[1])
        before = rss_mib()
        streams = []
        for _ in range(clients):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET /big HTTP/1.1\r\nHost: bench\r\n\r\n")
            streams.append(stream)
        await trio.sleep(1.0)
        during = rss_mib()
        wait = min(send_timeout, 3.0) + 2.0
        await trio.sleep(wait)
        after = rss_mib()
        print(
            f"send_timeout {send_timeout:g} s: RSS {before} MiB before, {during} MiB 1 s after "
            f"{clients} requests of {mib} MiB, {after} MiB {1 + wait:g} s after"
        )
        for stream in streams:
            await stream.aclose()
        stop.set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--send-timeout", type=float, default=2.0)
    args = parser.parse_args()
    trio.run(run, args.clients, args.mib, args.send_timeout)
    trio.run(run, args.clients, args.mib, 1000.0)


if __name__ == "__main__":
    main()
