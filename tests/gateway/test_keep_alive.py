"""Regressions for quart-trio's disconnect cancellation cutting hypercorn's send path
(motet/gateway/_connection.py), on raw sockets so nothing hides what the server does.

Both kinds of route are covered: motet's own (answered in front of quart-trio) and a route
the app's quart-trio side answers (a 404 here, a user's route when mounted).

Each test waits with a generous deadline for an event that, with the defect, never comes
(EOF on the socket, `serve()` returning); with the fix it comes at once or after a
keep-alive timeout of a fraction of a second.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing

from motet.gateway import GatewayOptions, serve

from .._collector import collector_off, left_for_the_collector
from ._raw import GENEROUS, connect, read_response, read_until_eof, request_bytes
from .conftest import Starter


@pytest.fixture(params=["/pets/1", "/not-a-motet-route"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_connection_close_response_is_followed_by_eof(
    app: Any, path: str, start_server: Starter
) -> None:
    # A long keep-alive timeout: the EOF must come from honouring `Connection: close`.
    url = await start_server(app, keep_alive_timeout=60.0)
    stream = await connect(url)
    await stream.send_all(request_bytes(path, close=True))
    data = await read_until_eof(stream)
    assert data.startswith(b"HTTP/1.1 200" if path == "/pets/1" else b"HTTP/1.1 404")
    await stream.aclose()


async def test_idle_keep_alive_connection_is_closed_after_keep_alive_timeout(
    app: Any, path: str, start_server: Starter
) -> None:
    url = await start_server(app, keep_alive_timeout=0.2)
    stream = await connect(url)
    await stream.send_all(request_bytes(path))
    status = b"HTTP/1.1 200" if path == "/pets/1" else b"HTTP/1.1 404"
    assert (await read_response(stream)).startswith(status)
    await stream.send_all(request_bytes(path))  # the connection is reused, then left idle
    assert (await read_response(stream)).startswith(status)
    assert await read_until_eof(stream) == b""
    await stream.aclose()


async def test_graceful_shutdown_does_not_wait_for_idle_connections(app: Any, path: str) -> None:
    stop = trio.Event()
    # A graceful timeout far beyond GENEROUS: waiting for the idle client would fail.
    options = GatewayOptions(port=0, graceful_timeout=60.0, keep_alive_timeout=60.0)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            idle = await connect(urls[0])
            await idle.send_all(request_bytes(path))
            await read_response(idle)
            stop.set()  # serve() must return although `idle` stays open
    assert await read_until_eof(idle) == b""
    await idle.aclose()


async def test_a_client_that_never_sends_its_request_is_dropped(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app, keep_alive_timeout=0.2)
    stream = await connect(url)
    await stream.send_all(b"GET /pets/1 HTTP/1.1\r\nHost: te")  # and then nothing
    assert await read_until_eof(stream) == b""
    await stream.aclose()


async def test_graceful_shutdown_lets_an_in_flight_request_finish(
    invoker: Any, converter: Any
) -> None:
    import httpx

    from motet.gateway import build_app
    from motet.steps._model import HttpTrigger, Step

    entered = trio.Event()

    async def handler(request: Any, ctx: Any) -> Any:
        entered.set()
        await trio.sleep(0.2)
        return {"done": True}

    app = build_app(
        [Step(name="w", handler=handler, triggers=(HttpTrigger("GET", "/w"),))],
        invoker,
        converter=converter,
    )
    stop = trio.Event()
    answers: list[httpx.Response] = []
    options = GatewayOptions(port=0, graceful_timeout=30.0)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )

            async def call() -> None:
                async with httpx.AsyncClient(base_url=urls[0]) as client:
                    answers.append(await client.get("/w"))

            nursery.start_soon(call)
            await entered.wait()
            stop.set()  # serve() returns once the request in flight is answered
    assert [a.json() for a in answers] == [{"done": True}]


async def test_a_closed_connection_leaves_nothing_for_the_collector(
    app: Any, start_server: Starter
) -> None:
    # hypercorn's connection server and its protocol hold each other (the protocol holds
    # the server's bound send): a cycle per connection, which clients that close after each
    # request (`Connection: close`, most webhooks and probes) left for the collector.
    url = await start_server(app, keep_alive_timeout=60.0)

    async def one_closed_request() -> None:
        stream = await connect(url)
        await stream.send_all(request_bytes("/pets/1", close=True))
        assert (await read_until_eof(stream)).startswith(b"HTTP/1.1 200")
        await stream.aclose()
        await trio.testing.wait_all_tasks_blocked()  # the server's side has ended too

    await one_closed_request()  # what is built once, lazily
    with collector_off():
        for _ in range(3):
            await one_closed_request()
        left = left_for_the_collector()
    assert left == [], "a closed connection left these for the collector"
