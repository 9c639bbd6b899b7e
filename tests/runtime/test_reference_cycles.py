"""A failed or timed-out run, on trio or asyncio, and a request through middleware leave no
reference cycle behind: the frames of a handler that raised (its payload, the request, the
connection's objects) are freed by reference counting as soon as the failure is recorded,
not at the garbage collector's next pass. A caught exception's traceback holds the frame
that caught it, so a local that keeps the exception closes a cycle; under a raised young
threshold (`motet start`), failing requests with 1 MB bodies held 310-560 MiB that way. The
collector is off while each test looks."""

from __future__ import annotations

import asyncio
import gc
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from motet import Observer, http, queue
from motet.project import ProjectConfig
from motet.steps import load_step
from motet.testing import open_test_runtime


class Payload:
    """Something a handler's frame holds, that a weak reference can watch."""


def watched(held: list[weakref.ref[Payload]]) -> Payload:
    """A new payload, with a weak reference to it added to `held`."""
    payload = Payload()
    held.append(weakref.ref(payload))
    return payload


class Runs(Observer):
    """An observer of handler runs, as `motet start`'s telemetry is: the dispatcher then
    records each run, failure and traceback included."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def on_run(self, run: Any) -> None:
        self.outcomes.append(run.outcome)


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_failed_http_handler_is_freed_at_once(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def handler(request: Any, ctx: Any) -> Any:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        raise ValueError("boom")

    step = load_step({"name": "Fail", "triggers": [http("POST", "/fail")]}, handler)
    runs = Runs()
    async with open_test_runtime([step], observers=[runs]) as app:
        response = await app.http.post("/fail", json={"n": 1})
        assert response.status == 500
        assert runs.outcomes == ["error"]
        assert len(held) == 1
        assert held[0]() is None, "the failed handler's frame is kept alive by a cycle"


async def test_a_timed_out_http_handler_is_freed_at_once(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def handler(request: Any, ctx: Any) -> Any:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        await trio.sleep(60)

    trigger = http("POST", "/slow", timeout=1.0)
    step = load_step({"name": "Slow", "triggers": [trigger]}, handler)
    async with open_test_runtime([step], observers=[Runs()]) as app:
        response = await app.http.post("/slow", json={})
        assert response.status == 504
        assert held[0]() is None, "the timed-out handler's frame is kept alive by a cycle"


async def test_a_failed_queue_handler_is_freed_once_its_failure_is_recorded(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def handler(data: Any, ctx: Any) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        raise ValueError("boom")

    step = load_step(
        {"name": "Sink", "triggers": [queue("work", max_retries=1, retry_delay=0)]}, handler
    )
    runs = Runs()
    async with open_test_runtime([step], observers=[runs]) as app:
        await app.emit("work", {"n": 1})
        await app.settle()
        assert len(await app.dead_letters()) == 1
        assert len(held) == 2 and runs.outcomes == ["error", "error"]  # both attempts ran
        # The test kit keeps each failure for `app.failures`, tracebacks and all; without
        # its records, nothing may hold the attempts' frames.
        assert len(app.failures) == 2
        app._failures.clear()
        assert [ref() for ref in held] == [None, None], "a failed attempt's frame is kept"


async def test_a_timed_out_queue_handler_is_freed_once_its_failure_is_recorded(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def handler(data: Any, ctx: Any) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        await trio.sleep(60)

    trigger = queue("work", max_retries=0, timeout=1.0)
    step = load_step({"name": "Slow", "triggers": [trigger]}, handler)
    runs = Runs()
    async with open_test_runtime([step], observers=[runs]) as app:
        await app.emit("work", {"n": 1})
        await app.settle()
        assert runs.outcomes == ["timeout"] and len(await app.dead_letters()) == 1
        app._failures.clear()
        assert held[0]() is None, "the timed-out attempt's frame is kept alive by a cycle"


ASYNCIO = ProjectConfig(handlers="asyncio")


async def test_a_failed_asyncio_handler_is_freed_once_its_failure_is_recorded(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def handler(data: Any, ctx: Any) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def answer(request: Any, ctx: Any) -> Any:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        await asyncio.sleep(0)
        raise ValueError("boom")

    steps = [
        load_step({"name": "Sink", "triggers": [queue("work", max_retries=0)]}, handler),
        load_step({"name": "Answer", "triggers": [http("POST", "/answer")]}, answer),
    ]
    runs = Runs()
    async with open_test_runtime(steps, observers=[runs], project=ASYNCIO) as app:
        await app.emit("work", {"n": 1})
        await app.settle()
        response = await app.http.post("/answer", json={})
        assert response.status == 500 and runs.outcomes == ["error", "error"]
        app._failures.clear()
        assert len(held) == 2
        assert [ref() for ref in held] == [None, None], "a failed asyncio run's frame is kept"


async def test_a_request_through_middleware_is_freed_at_once(
    autojump_clock: Any, no_collector: None
) -> None:
    held: list[weakref.ref[Payload]] = []

    async def passes(request: Any, ctx: Any, next: Any) -> Any:
        return await next()

    async def fails(request: Any, ctx: Any, next: Any) -> Any:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        raise ValueError("boom")

    async def handler(request: Any, ctx: Any) -> Any:
        held.append(weakref.ref(request))
        return {"status": 200, "body": {}}

    steps = [
        load_step({"name": "Ok", "triggers": [http("POST", "/ok", middleware=[passes])]}, handler),
        load_step({"name": "No", "triggers": [http("POST", "/no", middleware=[fails])]}, handler),
    ]
    async with open_test_runtime(steps, observers=[Runs()]) as app:
        assert (await app.http.post("/ok", json={})).status == 200
        assert (await app.http.post("/no", json={})).status == 500
        app._failures.clear()
        assert len(held) == 2
        assert [ref() for ref in held] == [None, None], "a request is kept alive by a cycle"


def _gateway_frames_in_cycles() -> list[str]:
    """The gateway's request frames among the objects only the collector would free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [
            f"{o.f_code.co_name} {o.f_code.co_filename}"
            for o in gc.garbage
            if type(o) is types.FrameType and "gateway" in o.f_code.co_filename
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_a_rejected_request_is_freed_at_once(autojump_clock: Any, no_collector: None) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return {"status": 200, "body": {}}

    step = load_step({"name": "Take", "triggers": [http("POST", "/take")]}, handler)
    async with open_test_runtime([step]) as app:
        bad = await app.http.post(
            "/take", data=b'{"n": ', headers={"content-type": "application/json"}
        )
        assert bad.status == 400
        assert _gateway_frames_in_cycles() == []
