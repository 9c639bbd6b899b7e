"""HTTP middleware in Motia's shape, `async def mw(req, ctx, next)`: run in order (the step's
list, then the trigger's), each returning its own response (the handler never runs) or
`await next()`'s; a raising middleware is a 500 problem like a raising handler; a bad list
fails the step's load."""

from __future__ import annotations

from typing import Any

import pytest

from motet import http, queue
from motet._errors import StepDefinitionError
from motet.steps import load_step
from motet.testing import open_test_runtime


def recorder(name: str, calls: list[str]) -> Any:
    async def mw(req: Any, ctx: Any, next: Any) -> Any:
        calls.append(f"{name} in")
        response = await next()
        calls.append(f"{name} out")
        response["headers"] = {**response.get("headers", {}), f"x-{name}": "1"}
        return response

    return mw


async def test_middleware_runs_in_order_around_the_handler(autojump_clock: Any) -> None:
    calls: list[str] = []

    async def handler(req: Any, ctx: Any) -> Any:
        calls.append("handler")
        return {"status": 200, "body": {"step": ctx.step.name}}

    step = load_step(
        {
            "name": "Wrapped",
            "triggers": [http("GET", "/w", middleware=[recorder("inner", calls)])],
            "middleware": [recorder("outer", calls)],  # the step's run first
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.get("/w")
    assert response.status == 200 and response.json == {"step": "Wrapped"}
    assert calls == ["outer in", "inner in", "handler", "inner out", "outer out"]
    assert response.headers["x-outer"] == response.headers["x-inner"] == "1"


async def test_a_middleware_short_circuits_with_its_own_response(autojump_clock: Any) -> None:
    handled: list[Any] = []

    async def auth(req: Any, ctx: Any, next: Any) -> Any:
        if not req.headers.get("authorization"):
            return {"status": 401, "body": {"error": "Unauthorized"}}
        return await next()

    step = load_step(
        {"type": "api", "name": "Api0", "method": "GET", "path": "/p", "middleware": [auth]},
        lambda req, ctx: handled.append(1) or {"status": 200, "body": {"ok": True}},
    )
    async with open_test_runtime([step]) as app:
        denied = await app.http.get("/p")
        allowed = await app.http.get("/p", headers={"Authorization": "t"})
    assert denied.status == 401 and denied.json == {"error": "Unauthorized"}
    assert allowed.status == 200 and handled == [1]  # a def handler still runs in a thread


async def test_a_raising_middleware_is_a_500_problem(autojump_clock: Any) -> None:
    async def broken(req: Any, ctx: Any, next: Any) -> Any:
        raise RuntimeError("middleware bug")

    step = load_step(
        {"name": "Broken", "triggers": [http("GET", "/b", middleware=[broken])]},
        lambda req, ctx: {"status": 200},
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.get("/b")
        errors = [r for r in app.logs if r.level == "error"]
    assert response.status == 500
    assert response.json["type"] == "urn:motet:problem:handler-error"
    assert any("middleware bug" in (r.traceback or "") for r in errors)


async def test_a_middleware_returning_nonsense_is_an_invalid_response(
    autojump_clock: Any,
) -> None:
    async def nonsense(req: Any, ctx: Any, next: Any) -> Any:
        return object()

    step = load_step(
        {"name": "Odd", "triggers": [http("GET", "/o", middleware=[nonsense])]},
        lambda req, ctx: {"status": 200},
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.get("/o")
    assert response.status == 500
    assert response.json["type"] == "urn:motet:problem:invalid-response"


async def _ok(req: Any, ctx: Any, next: Any) -> Any:
    return await next()


@pytest.mark.parametrize(
    ("middleware", "field", "message"),
    [
        (_ok, "triggers[0].middleware", "expected a list of middleware functions"),
        ([_ok, "auth"], "triggers[0].middleware[1]", "expected a function"),
        ([lambda req, next: None], "triggers[0].middleware[0]", r"called as mw\(req, ctx, next\)"),
        ({"auth": _ok}, "triggers[0].middleware", "expected a list"),
    ],
)
def test_a_bad_middleware_list_fails_the_load(middleware: Any, field: str, message: str) -> None:
    trigger = {"type": "http", "method": "GET", "path": "/x", "middleware": middleware}
    with pytest.raises(StepDefinitionError, match=message) as caught:
        load_step({"name": "Bad", "triggers": [trigger]}, lambda req, ctx: None)
    assert caught.value.field == field


def test_step_middleware_without_an_http_trigger_is_reported_not_refused() -> None:
    step = load_step(
        {"name": "Q", "triggers": [queue("t")], "middleware": [_ok]}, lambda d, c: None
    )
    assert step.unhonoured == ("middleware is not used: the step has no HTTP trigger to run it on",)
