"""Body limit and slow-client deadline, on raw sockets: the server answers without waiting
for (or storing) a body it has refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from ._raw import GENEROUS, connect, read_until_eof
from .conftest import DirectInvoker, Starter


def _split(data: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


async def test_declared_length_over_the_limit_is_refused_before_the_body(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)  # limit 4096
    stream = await connect(url)
    # 100 MB declared, nothing sent: the answer cannot depend on reading the body.
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
        b"\r\nContent-Length: 100000000\r\n\r\n"
    )
    head, doc = _split(await read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in head
    assert doc["type"] == "urn:motet:problem:body-too-large"
    assert "100000000" in doc["detail"]
    assert invoker.calls == 0


async def test_chunked_body_is_counted_while_it_streams(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    stream = await connect(url)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
        b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 1000
    for _ in range(5):  # 5000 bytes > 4096, and the body never ends
        await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    head, doc = _split(await read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 413")
    assert "4096" in doc["detail"]
    assert invoker.calls == 0


async def test_slow_client_gets_408_and_is_disconnected(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)  # read_timeout 0.5 s
    stream = await connect(url)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
        b'\r\nContent-Length: 20\r\n\r\n{"a":'
    )
    with trio.fail_after(GENEROUS):
        head, doc = _split(await read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 408")
    assert doc["type"] == "urn:motet:problem:request-timeout"
    assert "5 bytes received" in doc["detail"]
    assert invoker.calls == 0


async def test_a_handler_finishes_when_its_client_leaves(
    invoker: DirectInvoker, converter: Any, start_server: Starter
) -> None:
    from motet.gateway import build_app
    from motet.steps._model import HttpTrigger, Step

    entered, finished = trio.Event(), trio.Event()

    async def handler(request: Any, ctx: Any) -> Any:
        entered.set()
        await trio.sleep(0.1)
        await ctx.emit("work.done", request.body)
        finished.set()
        return {"ok": True}

    step = Step(name="work", handler=handler, triggers=(HttpTrigger("POST", "/work"),))
    url = await start_server(build_app([step], invoker, converter=converter))
    stream = await connect(url)
    await stream.send_all(
        b"POST /work HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
        b'\r\nContent-Length: 7\r\n\r\n{"n":1}'
    )
    with trio.fail_after(GENEROUS):
        await entered.wait()
        await stream.aclose()  # the client leaves while the handler runs
        await finished.wait()
    assert invoker.emitted == [("work.done", {"n": 1})]


async def test_a_client_leaving_mid_body_never_reaches_the_handler(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    stream = await connect(url)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
        b'\r\nContent-Length: 100\r\n\r\n{"a":'
    )
    await stream.aclose()
    async with httpx.AsyncClient(base_url=url) as client:  # the server is still fine
        assert (await client.post("/echo", json={"b": 2})).json()["body"] == {"b": 2}
    assert invoker.calls == 1
