"""`async def` handlers written for Motia (which runs on asyncio) run unchanged when the
project or the step says `handlers = "asyncio"`: asyncio.sleep, gather, Events and asyncio-only
libraries work, `ctx` (emit, state, logger, match) works from inside, failures retry and
dead-letter as usual, and a step timeout cancels the asyncio task. On trio, such a handler
fails with a message that says exactly how to switch.

asyncio work runs on real time (its loop is not trio's MockClock), so the sleeps here are
tiny; timeouts are trio's and stay virtual."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import attrs

from motet import http, queue
from motet._errors import AsyncioRequired
from motet.project import ProjectConfig
from motet.steps import load_step
from motet.testing import open_test_runtime

ASYNCIO = ProjectConfig(handlers="asyncio")


async def test_an_asyncio_handler_awaits_asyncio_and_uses_ctx(autojump_clock: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(data: Any, ctx: Any) -> None:
        await asyncio.sleep(0.001)
        a, b = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
        event = asyncio.Event()
        asyncio.get_running_loop().call_soon(event.set)
        await event.wait()
        seen["thread"] = threading.current_thread().name
        await ctx.state.set("greetings", data["id"], {"text": a + b})
        seen["state"] = await ctx.state.get("greetings", data["id"])
        ctx.logger.info("greeted", {"id": data["id"]})
        ctx.logger.info("as a list", [1, 2])
        seen["emitted"] = await ctx.emit({"topic": "greeted", "data": {"id": data["id"]}})
        await ctx.enqueue("greeted", {"id": "again"})
        seen["data"] = ctx.get_data()
        seen["match"] = await ctx.match({"queue": _echo})

    step = load_step(
        {"name": "Greet", "triggers": [queue("greet")], "enqueues": ["greeted"]}, handler
    )
    async with open_test_runtime([step], project=ASYNCIO) as app:
        await app.emit("greet", {"id": "g1"})
        await app.settle(fail_fast=True)
        greeted = app.messages("greeted")
        logs = {r.message: dict(r.fields) for r in app.logs_of("Greet")}
        stored = await app.state.get("greetings", "g1")
    assert seen["thread"] == "motet-asyncio"
    assert seen["state"] == stored == {"text": "ab"}
    assert greeted == [{"id": "g1"}, {"id": "again"}]
    assert isinstance(seen["emitted"], str) and len(seen["emitted"]) == 32
    assert logs["greeted"] == {"id": "g1"} and logs["as a list"] == {"data": [1, 2]}
    assert seen["data"] == {"id": "g1"} and seen["match"] == ("echo", {"id": "g1"})


async def _echo(value: Any) -> Any:
    await asyncio.sleep(0)
    return ("echo", value)


async def test_a_step_can_choose_asyncio_in_a_trio_project(autojump_clock: Any) -> None:
    threads: dict[str, str] = {}

    async def on_asyncio(data: Any, ctx: Any) -> None:
        await asyncio.sleep(0)
        threads["asyncio"] = threading.current_thread().name

    async def on_trio(data: Any, ctx: Any) -> None:
        threads["trio"] = threading.current_thread().name

    steps = [
        load_step({"name": "A", "triggers": [queue("t")], "handlers": "asyncio"}, on_asyncio),
        load_step({"name": "T", "triggers": [queue("t")]}, on_trio),
    ]
    async with open_test_runtime(steps) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
    assert threads == {"asyncio": "motet-asyncio", "trio": threading.main_thread().name}


async def test_on_trio_an_asyncio_handler_says_how_to_switch(autojump_clock: Any) -> None:
    attempts: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        await asyncio.sleep(0.001)

    step = load_step({"name": "Motia", "triggers": [queue("t", max_retries=3)]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        letters = await app.dead_letters("Motia")
        failure = app.failures[0]
    assert attempts == [1]  # it can never succeed on trio: dead-lettered at once
    assert len(letters) == 1
    error = letters[0].error
    assert "AsyncioRequired" in error and "no running event loop" in error
    assert 'handlers = "asyncio"' in error and '"handlers": "asyncio"' in error
    assert isinstance(failure.original, AsyncioRequired)


async def test_gather_under_trio_is_detected_too(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        await asyncio.gather(asyncio.sleep(0))

    step = load_step({"name": "Gather", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        (letter,) = await app.dead_letters("Gather")
    assert "AsyncioRequired" in letter.error and "like asyncio" in letter.error


async def test_an_asyncio_handler_that_raises_is_retried_then_dead_lettered(
    autojump_clock: Any,
) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        await asyncio.sleep(0)
        raise ValueError(f"attempt {ctx.message.attempt} failed")

    step = load_step({"name": "Bad", "triggers": [queue("t", max_retries=1)]}, handler)
    async with open_test_runtime([step], project=ASYNCIO) as app:
        await app.emit("t", {})
        await app.settle()
        (letter,) = await app.dead_letters("Bad")
    assert letter.error == "ValueError: attempt 2 failed" and letter.attempts == 2
    assert "in handler" in (letter.traceback or "")


async def test_a_timeout_cancels_the_asyncio_task(autojump_clock: Any) -> None:
    cancelled = threading.Event()

    async def handler(data: Any, ctx: Any) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    step = load_step({"name": "Slow", "triggers": [queue("t", timeout=1, max_retries=0)]}, handler)
    async with open_test_runtime([step], project=ASYNCIO) as app:
        await app.emit("t", {})
        await app.settle()
        (letter,) = await app.dead_letters("Slow")
    assert "HandlerTimeout" in letter.error and "1 s" in letter.error
    assert cancelled.is_set()
    # where the asyncio task was when time ran out, not only trio's frames
    assert "the asyncio handler was at:" in (letter.traceback or "")
    assert "await asyncio.sleep(3600)" in (letter.traceback or "")


@attrs.frozen
class Pet:
    name: str


async def test_an_asyncio_http_handler_and_its_middleware(autojump_clock: Any) -> None:
    order: list[str] = []

    async def auth(req: Any, ctx: Any, next: Any) -> Any:
        await asyncio.sleep(0)
        order.append(f"auth on {threading.current_thread().name}")
        if req["headers"].get("authorization") != "yes":
            return {"status": 401, "body": {"error": "Unauthorized"}}
        return await next()

    async def handler(req: Any, ctx: Any) -> Any:
        await asyncio.sleep(0)
        order.append("handler")
        await ctx.emit("pet.created", {"name": req.body.name})
        return {"status": 201, "body": {"name": req.get("body").name}}

    step = load_step(
        {
            "name": "CreatePet",
            "triggers": [http("POST", "/pets", body=Pet, middleware=[auth])],
            "enqueues": ["pet.created"],
            "handlers": "asyncio",
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        denied = await app.http.post("/pets", json={"name": "Rex"})
        created = await app.http.post(
            "/pets", json={"name": "Rex"}, headers={"Authorization": "yes"}
        )
        pets = app.messages("pet.created")
    assert denied.status == 401 and denied.json == {"error": "Unauthorized"}
    assert created.status == 201 and created.json == {"name": "Rex"}
    assert order == ["auth on motet-asyncio", "auth on motet-asyncio", "handler"]
    assert pets == [{"name": "Rex"}]


async def test_an_asyncio_http_handler_past_its_timeout_is_a_504(autojump_clock: Any) -> None:
    async def handler(req: Any, ctx: Any) -> Any:
        await asyncio.sleep(3600)

    step = load_step({"name": "Stuck", "triggers": [http("GET", "/stuck", timeout=2)]}, handler)
    async with open_test_runtime([step], project=ASYNCIO) as app:
        response = await app.http.get("/stuck")
    assert response.status == 504


async def test_a_ctx_call_after_the_handler_returned_fails_in_asyncio(
    autojump_clock: Any,
) -> None:
    late: list[BaseException] = []
    done = threading.Event()

    async def handler(data: Any, ctx: Any) -> None:
        async def later() -> None:
            await asyncio.sleep(0.01)
            try:
                await ctx.emit("out", {})
            except RuntimeError as exc:
                late.append(exc)
            done.set()

        asyncio.get_running_loop().create_task(later())

    step = load_step({"name": "Late", "triggers": [queue("t")], "enqueues": ["out"]}, handler)
    async with open_test_runtime([step], project=ASYNCIO) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
        # real time: the loop's thread runs on the wall clock, not trio's MockClock
        await _wait_real(done)
        out = app.messages("out")
    assert out == [] and "its ctx can no longer be used" in str(late[0])


async def _wait_real(event: threading.Event) -> None:
    import trio

    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(event.wait, 5.0)


def test_the_project_setting_is_read_and_checked(tmp_path: Any) -> None:
    import pytest

    from motet._errors import ProjectConfigError
    from motet.project import load_project

    (tmp_path / "motet.toml").write_text('handlers = "asyncio"\n')
    assert load_project(tmp_path).handlers == "asyncio"
    (tmp_path / "motet.toml").write_text('handlers = "gevent"\n')
    with pytest.raises(ProjectConfigError, match="handlers"):
        load_project(tmp_path)
    assert ProjectConfig().handlers == "trio"


async def test_an_asyncio_handler_does_real_asyncio_io(autojump_clock: Any) -> None:
    """asyncio-only networking (asyncio streams, what redis.asyncio and aiohttp are built on)
    against a real redis-server, from a queue handler."""
    from tests._redis_server import redis_server

    replies: list[bytes] = []

    async def handler(data: Any, ctx: Any) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", data["port"])
        writer.write(b"PING\r\n")
        await writer.drain()
        replies.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
        await ctx.state.set("pings", "last", {"reply": replies[-1].decode().strip()})

    step = load_step({"name": "Ping", "triggers": [queue("ping")]}, handler)
    with redis_server() as server:  # started before the runtime: a blocking start is fine
        async with open_test_runtime([step], project=ASYNCIO) as app:
            await app.emit("ping", {"port": server.port})
            await app.settle(fail_fast=True)
            stored = await app.state.get("pings", "last")
    assert replies == [b"+PONG\r\n"] and stored == {"reply": "+PONG"}


async def test_bound_loggers_work_from_asyncio_and_threads(autojump_clock: Any) -> None:
    async def on_asyncio(data: Any, ctx: Any) -> None:
        ctx.logger.bind(order="o1").warning("bound", [1])

    def on_thread(data: Any, ctx: Any) -> None:
        ctx.logger.bind(order="o2").info("bound")

    steps = [
        load_step({"name": "A", "triggers": [queue("t")], "handlers": "asyncio"}, on_asyncio),
        load_step({"name": "S", "triggers": [queue("t")]}, on_thread),
    ]
    async with open_test_runtime(steps) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
        a, s = app.logs_of("A"), app.logs_of("S")
    assert [r.message for r in a] == ["bound"] and dict(a[0].fields) == {"data": [1]}
    assert [r.message for r in s] == ["bound"]


def test_ctx_parts_added_later_hop_to_trio_from_asyncio() -> None:
    """What Context gains beyond emit/state/logger (ctx.streams, say) reaches asyncio code
    through a proxy: its async methods hop to trio, everything else reads as it is."""
    from motet.actors._asyncio_context import loop_side

    hopped: list[tuple[Any, ...]] = []

    def hop(fn: Any, *args: Any) -> Any:
        hopped.append((fn.__name__, *args))
        return "future"

    class Stream:
        name = "todos"

        async def set(self, group: str, id: str, value: Any) -> None: ...

        def describe(self) -> str:
            return "sync"

    class Streams:
        todos = Stream()

        def __getitem__(self, key: str) -> Stream:
            return self.todos

    streams = loop_side(Streams(), hop)
    assert streams.todos.set("g", "1", {"done": True}) == "future"
    assert streams["todos"].set("g", "2", {}) == "future"
    assert streams.todos.name == "todos" and streams.todos.describe() == "sync"
    assert hopped == [("set", "g", "1", {"done": True}), ("set", "g", "2", {})]
    assert loop_side(3, hop) == 3 and loop_side(None, hop) is None
