"""The plain gateway app (`gateway_app`, what `motet start` serves) answers what no step
serves by itself, with no web framework under it."""

from __future__ import annotations

from typing import Any

import httpx

from motet.gateway import GatewayOptions, gateway_app

from ._raw import connect, read_response
from .conftest import DirectInvoker, Starter, make_steps


def plain(invoker: DirectInvoker, converter: Any) -> Any:
    return gateway_app(make_steps(), invoker, converter=converter, options=GatewayOptions())


async def test_an_unknown_path_is_a_404_problem_and_the_connection_stays_usable(
    invoker: DirectInvoker, converter: Any, start_server: Starter
) -> None:
    url = await start_server(plain(invoker, converter))
    stream = await connect(url)
    body = b'{"name": "Rex", "age": 3}'
    await stream.send_all(
        b"POST /nothing HTTP/1.1\r\nHost: test\r\nX-Trace-Id: " + b"a" * 32 + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    head = await read_response(stream)
    assert head.startswith(b"HTTP/1.1 404")
    assert b"application/problem+json" in head and b"x-trace-id: " + b"a" * 32 in head
    # The unread body was drained: the same connection answers the next request.
    await stream.send_all(b"GET /pets/7 HTTP/1.1\r\nHost: test\r\n\r\n")
    assert (await read_response(stream)).startswith(b"HTTP/1.1 200")
    await stream.aclose()


async def test_a_websocket_to_a_path_nobody_serves_is_refused(
    invoker: DirectInvoker, converter: Any, start_server: Starter
) -> None:
    url = await start_server(plain(invoker, converter))
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.get(
            "/live",
            headers={
                "connection": "upgrade",
                "upgrade": "websocket",
                "sec-websocket-version": "13",
                "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        after = await client.get("/pets/1")
    assert refused.status_code == 403
    assert after.status_code == 200
