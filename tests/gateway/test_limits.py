"""Body limit and slow-client deadline, on raw sockets: the server answers without waiting
for (or storing) a body it has refused."""

from __future__ import annotations

import json
from typing import Any

import trio

from .conftest import DirectInvoker, Starter
from .test_keep_alive import GENEROUS, _connect, _read_until_eof


def _split(data: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


async def test_declared_length_over_the_limit_is_refused_before_the_body(
        app: Any, invoker: DirectInvoker, start_server: Starter) -> None:
    url = await start_server(app)  # limit 4096
    stream = await _connect(url)
    # 100 MB declared, nothing sent: the answer cannot depend on reading the body.
    await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 100000000\r\n\r\n")
    head, doc = _split(await _read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in head
    assert doc["type"] == "urn:motet:problem:body-too-large"
    assert "100000000" in doc["detail"]
    assert invoker.calls == 0


async def test_chunked_body_is_counted_while_it_streams(
        app: Any, invoker: DirectInvoker, start_server: Starter) -> None:
    url = await start_server(app)
    stream = await _connect(url)
    await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                          b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 1000
    for _ in range(5):  # 5000 bytes > 4096, and the body never ends
        await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    head, doc = _split(await _read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 413")
    assert "4096" in doc["detail"]
    assert invoker.calls == 0


async def test_slow_client_gets_408_and_is_disconnected(
        app: Any, invoker: DirectInvoker, start_server: Starter) -> None:
    url = await start_server(app)  # read_timeout 0.5 s
    stream = await _connect(url)
    await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 20\r\n\r\n{\"a\":")
    with trio.fail_after(GENEROUS):
        head, doc = _split(await _read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 408")
    assert doc["type"] == "urn:motet:problem:request-timeout"
    assert "5 bytes received" in doc["detail"]
    assert invoker.calls == 0
