"""The gateway reports each request it answers to `on_http` itself (what `motet start`
serves), on hypercorn (the status read from its stream) and under any other server (the
status seen through a wrapped `send`): a step's answer, its failure, a 405 and an unknown
path, each once, with route, step, status and trace id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio.testing

from motet._observer import HttpExchange
from motet.console._auth import OperatorAccess
from motet.console._operator import OperatorASGI
from motet.gateway import GatewayOptions, gateway_app

from .conftest import DirectInvoker, Starter, make_steps


async def _requests(client: httpx.AsyncClient) -> list[int]:
    answers = [
        await client.post(
            "/pets", json={"name": "Rex", "age": 3}, headers={"x-trace-id": "a" * 32}
        ),
        await client.post("/boom", json={}),
        await client.delete("/search"),
        await client.get("/nowhere"),
    ]
    return [r.status_code for r in answers]


def _check(seen: list[HttpExchange]) -> None:
    rows = [(e.method, e.route, e.step, e.status) for e in seen]
    assert rows == [
        ("POST", "/pets", "create-pet", 201),
        ("POST", "/boom", "boom", 500),
        ("DELETE", None, None, 405),
        ("GET", None, None, 404),
    ]
    assert seen[0].trace_id == "a" * 32
    assert all(e.duration >= 0 for e in seen)


@pytest.mark.parametrize("operator", [False, True])
async def test_every_answer_is_reported_once_on_hypercorn(
    invoker: DirectInvoker, converter: Any, start_server: Starter, operator: bool
) -> None:
    seen: list[HttpExchange] = []
    app: Any = gateway_app(make_steps(), invoker, converter=converter, on_http=seen.append)
    if operator:  # the console's layer in front, given the same observers, adds no report
        app = OperatorASGI(
            None,  # type: ignore[arg-type]  # unused: no operator path is requested
            app,
            access=OperatorAccess(None),
            options=GatewayOptions(),
            on_http=seen.append,
        )
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        assert await _requests(client) == [201, 500, 405, 404]
    # The client may have its last answer before the server's task has gone on to report it.
    await trio.testing.wait_all_tasks_blocked()
    _check(seen)


async def test_every_answer_is_reported_under_another_server(
    invoker: DirectInvoker, converter: Any
) -> None:
    seen: list[HttpExchange] = []
    app = gateway_app(make_steps(), invoker, converter=converter, on_http=seen.append)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        assert await _requests(client) == [201, 500, 405, 404]
    _check(seen)
