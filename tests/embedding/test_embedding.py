"""motet inside a user's own trio program: `open_runtime` with and without the gateway, the
gateway mounted on the user's quart-trio app, and the runnable example the README links."""

from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from quart_trio import QuartTrio

import motet
from motet import http, queue
from motet.actors._dispatcher import HandlerRun
from motet.backends import MemoryBackend
from motet.gateway import GatewayOptions, mount, serve
from motet.steps import load_step

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed_service.py"
README = Path(__file__).resolve().parents[2] / "README.md"
DEADLINE = 30.0


@attrs.frozen
class Order:
    id: str
    qty: int


async def place(request: motet.Request, ctx: motet.Context) -> dict[str, Any]:
    await ctx.emit("order.placed", {"id": request.body.id, "qty": request.body.qty})
    return {"status": 202, "body": {"id": request.body.id}}


async def ship(order: dict[str, Any], ctx: motet.Context) -> None:
    await ctx.state.set("shipped", order["id"], order)


def order_steps() -> list[motet.Step]:
    return [
        load_step(
            {
                "name": "Place",
                "triggers": [http("POST", "/orders", body=Order)],
                "enqueues": ["order.placed"],
            },
            place,
        ),
        load_step({"name": "Ship", "triggers": [queue("order.placed")]}, ship),
    ]


class Finished(motet.Observer):
    """Handler runs of one step, observed: an event per run, so a test waits for the work
    itself rather than for time to pass."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.runs: list[HandlerRun] = []
        self._changed = trio.Event()

    def on_run(self, run: HandlerRun) -> None:
        if run.step == self.step:
            self.runs.append(run)
            self._changed.set()

    async def wait(self, count: int = 1) -> list[HandlerRun]:
        while len(self.runs) < count:
            self._changed = trio.Event()
            await self._changed.wait()
        return self.runs


async def test_open_runtime_serves_http_steps_on_its_own_port() -> None:
    options = GatewayOptions(port=0)
    shipped = Finished("Ship")
    async with motet.open_runtime(
        order_steps(), backend="memory", serve=options, observers=[shipped]
    ) as runtime:
        [url] = runtime.gateway_urls
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.post("/orders", json={"id": "o1", "qty": 2})
            assert r.status_code == 202 and r.headers["x-trace-id"]
            bad = await client.post("/orders", json={"id": "o1", "qty": "2"})
            assert bad.status_code == 400
        [run] = await shipped.wait()
        assert run.outcome == "ok" and run.trace_id == r.headers["x-trace-id"]
        assert await runtime.backend.state_get("shipped", "o1") == {"id": "o1", "qty": 2}


async def test_open_runtime_without_a_gateway_takes_emits_from_the_program(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shipped = Finished("Ship")
    async with motet.open_runtime(order_steps(), backend="memory", observers=[shipped]) as runtime:
        assert runtime.gateway_urls == []
        message_id = await runtime.emit("order.placed", {"id": "o2", "qty": 1})
        [run] = await shipped.wait()
        assert run.message_id == message_id
        assert await runtime.backend.state_get("shipped", "o2") == {"id": "o2", "qty": 1}


async def test_emit_before_the_runtime_runs_says_so() -> None:
    runtime = motet.Runtime(order_steps(), backend=MemoryBackend())
    with pytest.raises(RuntimeError, match="needs a running runtime"):
        await runtime.emit("order.placed", {})


async def test_leaving_the_block_lets_a_running_handler_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started, release = trio.Event(), trio.Event()
    finished: list[str] = []

    async def slow(data: Any, ctx: motet.Context) -> None:
        started.set()
        await release.wait()
        finished.append(data["id"])

    steps = [load_step({"name": "Slow", "triggers": [queue("slow")]}, slow)]
    async with trio.open_nursery() as nursery:

        async def release_later() -> None:
            await started.wait()
            await trio.sleep(5)  # virtual: well inside shutdown_timeout (10 s)
            assert finished == []  # the runtime is still waiting for the handler
            release.set()

        nursery.start_soon(release_later)
        async with motet.open_runtime(steps, backend="memory") as runtime:
            await runtime.emit("slow", {"id": "s1"})
            await started.wait()
        # The block has exited: the stop waited for the handler.
        assert finished == ["s1"]


async def test_an_error_in_the_block_propagates_unwrapped_after_a_graceful_stop() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with motet.open_runtime(order_steps(), backend="memory"):
            raise KeyError("mine")


async def test_a_steps_folder_that_does_not_exist_is_a_step_definition_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(motet.StepDefinitionError, match="does not exist"):
        async with motet.open_runtime("nowhere", root=tmp_path):
            pass  # pragma: no cover


async def test_a_port_in_use_is_one_gateway_error_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(motet.GatewayError) as caught:
            async with motet.open_runtime(
                order_steps(), backend="memory", serve=GatewayOptions(port=port)
            ):
                pytest.fail("the runtime must not start")  # pragma: no cover
    error = caught.value
    assert type(error) is motet.GatewayError  # itself, not inside exception groups
    assert f"127.0.0.1:{port}" in str(error) and "in use" in str(error)
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.EADDRINUSE
    shown = "".join(traceback.format_exception(error))
    assert "ExceptionGroup" not in shown and shown.count("motet.GatewayError") == 1


async def test_mount_serves_motet_routes_from_the_users_quart_trio_app() -> None:
    shipped = Finished("Ship")
    async with motet.open_runtime(order_steps(), backend="memory", observers=[shipped]) as runtime:
        app = QuartTrio("users_service")

        @app.get("/health")
        async def health() -> dict[str, Any]:
            return {"ok": True}

        options = GatewayOptions(port=0)
        assert runtime.dispatcher is not None
        mount(
            app,
            runtime.steps,
            runtime.dispatcher,
            converter=runtime.converter,
            options=options,
            url_prefix="/jobs",
        )
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            [url] = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/health")).json() == {"ok": True}
                r = await client.post("/jobs/orders", json={"id": "o3", "qty": 3})
                assert r.status_code == 202 and r.json() == {"id": "o3"}
                wrong = await client.get("/jobs/orders")
                assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
                assert wrong.headers["content-type"] == "application/problem+json"
                assert (await client.post("/orders", json={})).status_code == 404
                spec = (await client.get("/jobs/openapi.json")).json()
                assert "/jobs/orders" in spec["paths"]
            await shipped.wait()
            stop.set()
        assert await runtime.backend.state_get("shipped", "o3") == {"id": "o3", "qty": 3}


def test_the_embedding_example_runs_and_answers(tmp_path: Path) -> None:
    """examples/embed_service.py as a user runs it: its own routes and motet's, queued work
    done in the background, SQLite in the working folder, SIGTERM stops it cleanly."""
    env = {**os.environ, "PORT": "0", "MOTET_BACKEND": "sqlite", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        end = time.monotonic() + DEADLINE
        while not any("listening on" in line for line in lines):
            assert process.poll() is None, f"the example exited: {lines}"
            assert time.monotonic() < end, f"the example did not listen: {lines}"
            time.sleep(0.02)  # waiting for another process to start
        url = next(x for x in lines if "listening on" in x).rsplit(" ", 1)[1].strip()
        r = httpx.post(f"{url}/api/signups", json={"email": "ada@example.com"}, timeout=DEADLINE)
        assert r.status_code == 202 and r.json()["email"] == "ada@example.com"
        end = time.monotonic() + DEADLINE
        while True:  # the welcome is sent by a queue step in the example's process
            got = httpx.get(f"{url}/api/signups/ada@example.com", timeout=DEADLINE).json()
            if got.get("welcomed"):
                break
            assert time.monotonic() < end, f"no welcome within {DEADLINE} s: {got}"
            time.sleep(0.02)
        assert httpx.get(f"{url}/health", timeout=DEADLINE).json() == {
            "ok": True,
            "backend": "sqlite",
        }
        assert httpx.get(f"{url}/stats", timeout=DEADLINE).status_code == 200
        bad = httpx.post(f"{url}/api/signups", json={"email": 5}, timeout=DEADLINE)
        assert bad.status_code == 400 and "$.body.email" in bad.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0, lines
        reader.join(DEADLINE)
        rest = "".join(lines)
        assert "embed_service stopped" in rest and "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert (tmp_path / ".motet" / "motet.db").is_file()


def readme_embedding_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Embedding in a trio service", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_embedding_snippet_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The README's snippet as a user pastes it into a project: it serves, and SIGINT stops
    it gracefully (exit 0, no traceback)."""
    from ..cli._project import BASIC_STEPS, write_project

    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    (root / "service.py").write_text(readme_embedding_snippet(), encoding="utf-8")
    env = {**os.environ, "MOTET_PORT": "0", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "service.py"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
        reader.start()
        end = time.monotonic() + DEADLINE
        while not any("serving on" in line for line in lines):
            assert process.poll() is None, f"the snippet exited: {lines}"
            assert time.monotonic() < end, f"the snippet did not serve: {lines}"
            time.sleep(0.02)  # waiting for another process to start
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE) == 0, lines
        reader.join(DEADLINE)
        assert "Traceback" not in "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
