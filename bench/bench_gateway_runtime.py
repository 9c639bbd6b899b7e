"""POST -> 200 with a real emit, through the whole runtime, vs a bare ASGI app in the same run.

    .venv/bin/python bench/bench_gateway_runtime.py [--seconds 5] [--rounds 3] [--connections 50]

bench_gateway.py measures the gateway with a stand-in invoker (the handler's emit is one
checkpoint). Here the invoker is the runtime's own Dispatcher: `motet.Runtime` with
`serving(...)` as `motet start` builds it, so each request gets a handler context, its
emit is a real `ctx.emit` that returns once the backend holds the message, and a queue step
subscribed to the topic consumes every message in the same process. Same servers-in-child-
processes, CPU pinning, wrk driver and interleaved rounds as bench_gateway.py, whose helpers
this imports.

Variants:
  bare            bench_gateway's bare ASGI app (parse JSON, one checkpoint, JSON answer)
  motet           bench_gateway's gateway + stand-in invoker (no runtime behind it)
  runtime-memory  the runtime on the memory backend
  runtime-sqlite  the runtime on SQLite (a file in a temporary folder; WAL, group commit:
                  a 200 means the emitted message is committed)
  untraced-*      the same served with telemetry=False: no spans, stored logs or
                  metrics (`motet start` records them, since it serves the console)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_gateway as bg  # bench/ is sys.path[0] when this file is run

VARIANTS = (
    "bare",
    "motet",
    "runtime-memory",
    "runtime-sqlite",
    "untraced-memory",
    "untraced-sqlite",
)


def _runtime(backend_spec: str, folder: Path, *, traced: bool) -> Any:
    import attrs

    from motet import Runtime, RuntimeOptions, http, queue
    from motet.backends import backend_from_url
    from motet.console._part import serving
    from motet.gateway import GatewayOptions
    from motet.steps import load_step

    @attrs.frozen
    class NewPet:
        name: str
        age: int
        tags: list[str] = attrs.Factory(list)

    @attrs.frozen
    class Pet:
        id: str
        name: str
        age: int

    async def create(request: Any, ctx: Any) -> Any:
        pet = Pet("p1", request.body.name, request.body.age)
        await ctx.emit("pet.created", {"id": pet.id, "name": pet.name})
        return pet

    async def created(pet: Any, ctx: Any) -> None:
        return None

    steps = [
        load_step(
            {
                "name": "CreatePet",
                "triggers": [http("POST", "/pets", body=NewPet)],
                "enqueues": ["pet.created"],
            },
            create,
        ),
        load_step({"name": "PetCreated", "triggers": [queue("pet.created")]}, created),
    ]
    return Runtime(
        steps,
        backend=backend_from_url(backend_spec, root=folder),
        options=RuntimeOptions(log_sink=False),
        parts=serving(GatewayOptions(port=0, error_log=None), telemetry=traced),
    )


def serve_variant(variant: str) -> None:
    import trio

    if variant in ("bare", "motet"):
        bg.serve_variant(variant)
        return
    bg._count_calls_on_signals()
    with tempfile.TemporaryDirectory() as folder:
        traced, backend = variant.split("-", 1)
        runtime = _runtime(backend, Path(folder), traced=traced == "runtime")

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(runtime.run)
                print(runtime.gateway_urls[0], flush=True)

        trio.run(main)


def measure(variant: str, script: Path, seconds: float, connections: int) -> bg.Sample:
    server = subprocess.Popen(
        [*bg.pin(0), sys.executable, __file__, "--serve", variant],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"{variant} server did not start")
        time.sleep(0.3)  # let start-up settle before reading idle RSS
        idle = bg.rss_kib(server.pid)
        bg.run_wrk(url, script, 1, connections)  # warm-up
        before = bg.cpu_seconds(server.pid)
        rate, count = bg.run_wrk(url, script, seconds, connections)
        cpu = bg.cpu_seconds(server.pid) - before
        short_calls, short_count = bg.count_calls(server, url, script, 1, connections)
        long_calls, long_count = bg.count_calls(server, url, script, 3, connections)
        calls = (long_calls - short_calls) / max(1, long_count - short_count)
        return bg.Sample(rate, cpu / count * 1e6, idle, calls)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    bg.main(variants_all=VARIANTS, serve=serve_variant, measure_one=measure, description=__doc__)


if __name__ == "__main__":
    main()
