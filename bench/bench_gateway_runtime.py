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
  full-sqlite     runtime-sqlite with its telemetry store already at its retention limit
                  (100k spans of earlier requests, made with the checkout's own ids), as on
                  a server that has run a while: each insert then also deletes the oldest
                  span, and index pages no longer all fit SQLite's cache
  start-1         `motet start` itself (SQLite, telemetry on) on a project with the same
                  two steps, one instance
  start-1-pinned  start-1 on CPU 0, as the bare app and the runtime-* servers are: the
                  like-for-like comparison (the whole server on one core, wrk on the other)
  start-2         the same with `--instances 2`: two worker processes sharing the port

Beside each CPU figure, the server's main thread's share (the trio loop: hypercorn, the
gateway, handlers); the rest is its worker threads' (SQLite's writer, the telemetry writer).

A variant named `<variant>@against` is served by another checkout's python (its own motet),
given as BENCH_AGAINST, interleaved with this checkout's in the same rounds:

    BENCH_AGAINST=/work/wt/base/.venv/bin/python .venv/bin/python bench/bench_gateway_runtime.py \
        --variants bare,runtime-sqlite,runtime-sqlite@against

start-1 and start-2 are not pinned (two instances need both cores; one instance is also
run pinned), so wrk (pinned to CPU 1) shares a core with them: on 2 vCPUs the start-2 /
start-1 rate ratio is a lower bound of the scaling; CPU per request (summed over the parent
and its instances) says what each request costs. Calls per request are not counted for them
(the work is in the children).
"""

from __future__ import annotations

import os
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
    "full-sqlite",
    "start-1",
    "start-1-pinned",
    "start-2",
)

# The project `motet start` serves in the start-* variants: bench_gateway's POST /pets with
# a real emit, and a queue step consuming the topic.
PROJECT_STEP = """
import attrs
from motet import http, queue

@attrs.frozen
class NewPet:
    name: str
    age: int
    tags: list[str] = attrs.Factory(list)

config = {
    "name": "CreatePet",
    "triggers": [http("POST", "/pets", body=NewPet)],
    "enqueues": ["pet.created"],
}

async def handler(request, ctx):
    await ctx.emit("pet.created", {"id": "p1", "name": request.body.name})
    return {"id": "p1", "name": request.body.name, "age": request.body.age}
"""
CONSUMER_STEP = """
from motet import queue

config = {"name": "PetCreated", "triggers": [queue("pet.created")]}

async def handler(pet, ctx):
    return None
"""


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


def _fill_telemetry(path: Path, spans: int = 100_000) -> None:
    """Store `spans` spans of earlier requests (three per request, as this app records),
    up to the default retention limit, with ids made as the checkout makes them."""
    from motet._envelope import new_id
    from motet.observe import SqliteTelemetryStore
    from motet.observe._records import Emitted, Span

    store = SqliteTelemetryStore(path)
    start = time.time() - 3600
    batch: list[Span] = []
    for i in range(spans // 3):
        trace, message, at = new_id(), new_id(), start + i * 0.01
        common: dict[str, Any] = {"trace_id": trace, "started": at, "duration": 2e-4}
        batch += [
            Span(new_id(), kind="http", name="POST /pets", step="CreatePet", status=200, **common),
            Span(
                new_id(),
                kind="handler",
                name="CreatePet",
                step="CreatePet",
                trigger="http",
                emitted=(Emitted("pet.created", message),),
                **common,
            ),
            Span(
                new_id(),
                kind="handler",
                name="PetCreated",
                step="PetCreated",
                trigger="queue",
                topic="pet.created",
                message_id=message,
                attempt=1,
                **common,
            ),
        ]
        if len(batch) >= 3_000:
            store.write([], batch, now=time.time())
            batch = []
    store.write([], batch, now=time.time())
    store.close()


def serve_variant(variant: str) -> None:
    import trio

    if variant in ("bare", "motet"):
        bg.serve_variant(variant)
        return
    bg._count_calls_on_signals()
    with tempfile.TemporaryDirectory() as folder:
        traced, backend = variant.split("-", 1)
        runtime = _runtime(backend, Path(folder), traced=traced in ("runtime", "full"))
        if traced == "full":
            _fill_telemetry(runtime.backend.path.parent / "telemetry.db")

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(runtime.run)
                print(runtime.gateway_urls[0], flush=True)

        trio.run(main)


def children(pid: int) -> list[int]:
    """The running children of a process (of any of its threads: trio may spawn from one)."""
    return [
        int(kid)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for kid in (task / "children").read_text().split()
    ]


def family_cpu_seconds(pid: int, *, main_threads: bool = False) -> float:
    """CPU time of a process and its running children (the instances); with `main_threads`,
    of their main threads (the trio loops) only."""
    own = bg.cpu_seconds(pid, pid if main_threads else None)
    return own + sum(family_cpu_seconds(k, main_threads=main_threads) for k in children(pid))


def family_rss_kib(pid: int) -> int:
    return bg.rss_kib(pid) + sum(family_rss_kib(k) for k in children(pid))


def measure_start(
    variant: str, script: Path, seconds: float, connections: int, python: str = sys.executable
) -> bg.Sample:
    """`motet start --instances N` (the variant's N) on a project of the same two steps."""
    instances = variant.split("-")[1]
    pin = bg.pin(0) if variant.endswith("-pinned") else []
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "steps").mkdir()
        (project / "steps" / "create_pet_step.py").write_text(PROJECT_STEP)
        (project / "steps" / "pet_created_step.py").write_text(CONSUMER_STEP)
        (project / "motet.toml").write_text('steps = "steps"\n')
        port = bg.free_port()
        cmd = [*pin, python, "-m", "motet", "--project", str(project), "start"]
        cmd += ["--port", str(port), "--instances", instances, "--log-level", "error"]
        # From the project folder: `-m` puts the working directory first on sys.path, so run
        # from this checkout, the other interpreter of `start-*@against` would import this
        # checkout's motet instead of its own.
        server = subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            bg.wait_for_port(port, server)
            time.sleep(0.5 * int(instances))  # every instance up, not only the first
            idle = family_rss_kib(server.pid)
            bg.run_wrk(url, script, 1, connections)  # warm-up
            before = family_cpu_seconds(server.pid)
            main_before = family_cpu_seconds(server.pid, main_threads=True)
            rate, count = bg.run_wrk(url, script, seconds, connections)
            cpu = family_cpu_seconds(server.pid) - before
            main = family_cpu_seconds(server.pid, main_threads=True) - main_before
            return bg.Sample(rate, cpu / count * 1e6, idle, float("nan"), main / count * 1e6)
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(variant: str, script: Path, seconds: float, connections: int) -> bg.Sample:
    python = sys.executable
    if variant.endswith("@against"):  # the same variant served by another checkout
        variant = variant.removesuffix("@against")
        python = os.environ["BENCH_AGAINST"]
    if variant.startswith("start-"):
        return measure_start(variant, script, seconds, connections, python)
    server = subprocess.Popen(
        [*bg.pin(0), python, __file__, "--serve", variant],
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
        before, main_before = bg.cpu_seconds(server.pid), bg.cpu_seconds(server.pid, server.pid)
        rate, count = bg.run_wrk(url, script, seconds, connections)
        cpu = bg.cpu_seconds(server.pid) - before
        main = bg.cpu_seconds(server.pid, server.pid) - main_before
        calls = bg.count_calls(server, url, script, 3, connections)
        return bg.Sample(rate, cpu / count * 1e6, idle, calls, main / count * 1e6)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    medians = bg.main(
        variants_all=VARIANTS, serve=serve_variant, measure_one=measure, description=__doc__
    )
    if medians and "start-1" in medians and "start-2" in medians:
        (rate1, cpu1, *_), (rate2, cpu2, *_) = medians["start-1"], medians["start-2"]
        print(
            f"--instances 2 / 1: rate {rate2 / rate1:4.2f}  "
            f"CPU per request {cpu2 / cpu1:4.2f} (target: rate >= 1.6 on 2 quiet cores)"
        )


if __name__ == "__main__":
    main()
