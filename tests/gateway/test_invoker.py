"""Where the runtime meets the gateway: `RuntimeInvoker` is the runtime's `HttpInvoker`.

The dispatcher knows no HTTP (it lost `invoke_http`/`log_error`); the gateway wraps a runtime's
dispatcher in `RuntimeInvoker`, so `motet start`, `mount(app, steps, runtime.dispatcher, ...)`
and the test client all run HTTP handlers through this one adapter.
"""

from __future__ import annotations

from typing import Any

from motet import http
from motet.actors import Dispatcher
from motet.gateway._invoker import RuntimeInvoker, as_invoker
from motet.steps import load_step
from motet.testing import open_test_runtime

from .conftest import DirectInvoker


def test_the_dispatcher_has_no_http_of_its_own() -> None:
    assert not hasattr(Dispatcher, "invoke_http")
    assert not hasattr(Dispatcher, "log_error")


def test_a_test_s_own_invoker_is_used_as_it_is() -> None:
    direct = DirectInvoker()
    assert as_invoker(direct) is direct


async def test_the_test_client_runs_handlers_through_the_runtime_invoker(
    autojump_clock: Any,
) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: Any, ctx: Any) -> Any:
        seen["trace_id"], seen["request"] = ctx.trace_id, request
        if request.query.get("fail"):
            raise RuntimeError("boom")
        await ctx.emit("pinged", {"n": 1})
        return {"status": 202, "body": {"trace": ctx.trace_id}}

    step = load_step(
        {"name": "Ping", "triggers": [http("POST", "/ping/:id")], "enqueues": ["pinged"]},
        handler,
    )
    async with open_test_runtime([step]) as app:
        assert app.runtime.dispatcher is not None
        assert isinstance(as_invoker(app.runtime.dispatcher), RuntimeInvoker)
        ok = await app.http.post("/ping/7", json={})
        assert ok.status == 202
        assert seen["request"].path_params == {"id": "7"}
        assert ok.json == {"trace": seen["trace_id"]}
        assert app.messages("pinged") == [{"n": 1}]
        failed = await app.http.post("/ping/8", json={}, query={"fail": "1"})
        assert failed.status == 500
        [line] = [r for r in app.logs_of("Ping") if r.level == "error"]
        assert line.trace_id == seen["trace_id"]
        assert line.traceback is not None and "RuntimeError: boom" in line.traceback
