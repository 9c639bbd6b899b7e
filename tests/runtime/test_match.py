"""`ctx.match` calls a one-argument branch with what the handler got (Motia's form): the
request for HTTP, the input for queue and state, the tick for cron; zero-argument branches
still work, and a branch of any other shape is a clear TypeError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from motet import cron, http, queue, state
from motet.steps import load_step
from motet.testing import open_test_runtime


@attrs.frozen
class Order:
    n: int


async def test_one_argument_branches_get_the_request_or_the_input(autojump_clock: Any) -> None:
    seen: dict[str, Any] = {}

    async def on_http(request: Any) -> Any:
        seen["http"] = request
        return {"status": 201, "body": {"n": request.body.n, "path": request.path}}

    async def on_queue(order: Any) -> None:
        seen["queue"] = order

    def on_state(event: Any) -> None:  # a plain def branch works too
        seen["state"] = event

    async def on_cron(tick: Any) -> None:
        seen["cron"] = tick

    async def handler(_input: Any, ctx: Any) -> Any:
        if ctx.trigger.type == "queue":
            await ctx.state.set("orders", "o1", {"n": _input.n})
        return await ctx.match(
            {"http": on_http, "queue": on_queue, "state": on_state, "cron": on_cron}
        )

    step = load_step(
        {
            "name": "Orders",
            "triggers": [
                http("POST", "/orders", body=Order),
                queue("order.created", input=Order),
                state("orders"),
                cron("0 8 * * *"),
            ],
        },
        handler,
    )
    start = datetime(2026, 1, 1, 7, tzinfo=UTC)
    async with open_test_runtime([step], start=start) as app:
        response = await app.http.post("/orders", json={"n": 1})
        await app.emit("order.created", {"n": 2})
        await app.advance(timedelta(hours=1))
        await app.settle(fail_fast=True)
    assert response.status == 201 and response.json == {"n": 1, "path": "/orders"}
    assert seen["http"].body == Order(1)
    assert seen["queue"] == Order(2)
    assert seen["state"]["key"] == "o1" and seen["state"]["value"] == {"n": 2}
    assert seen["cron"]["scheduled"] == "2026-01-01T08:00:00Z"


async def test_zero_argument_and_optional_argument_branches(autojump_clock: Any) -> None:
    calls: list[Any] = []

    async def handler(data: Any, ctx: Any) -> Any:
        await ctx.match({"queue": lambda: calls.append("none")})
        await ctx.match({"queue": lambda value=None: calls.append(value)})
        await ctx.match({"queue": lambda *args: calls.append(args)})
        return await ctx.match({"http": lambda: calls.append("not this one")})

    step = load_step({"name": "Q", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"k": 1})
        await app.settle(fail_fast=True)
    assert calls == ["none", {"k": 1}, ({"k": 1},)]


async def test_sync_handlers_match_with_the_input_too(autojump_clock: Any) -> None:
    seen: list[Any] = []

    def handler(data: Any, ctx: Any) -> Any:
        return ctx.match({"queue": lambda value: seen.append(value)})

    step = load_step({"name": "Sync", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"k": 2})
        await app.settle(fail_fast=True)
    assert seen == [{"k": 2}]


async def test_a_branch_with_two_arguments_is_a_clear_error(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> Any:
        async def on_queue(data: Any, ctx: Any) -> None:
            pass

        await ctx.match({"queue": on_queue})

    step = load_step({"name": "Two", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        with pytest.raises(Exception, match="must take no argument or one") as caught:
            await app.settle(fail_fast=True)
    assert "on_queue(data: 'Any', ctx: 'Any')" in str(caught.value.__cause__ or caught.value)
