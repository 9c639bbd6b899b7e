"""Lingering close: after an early answer (413, 408, a protocol error) the server reads and
drops what the client still sends before closing, so a client that writes its whole body
before reading gets the answer, not a reset. Bounded in time and bytes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import trio

from ._raw import GENEROUS, connect, read_until_eof
from .conftest import DirectInvoker, Starter

EIGHT_MIB = 8 * 1024 * 1024


def _split(data: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


def _urllib_post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=GENEROUS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_urllib_reads_the_413_of_a_body_it_writes_whole(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)  # limit 4096
    status, doc = await trio.to_thread.run_sync(_urllib_post, url + "/echo", b"x" * EIGHT_MIB)
    assert status == 413
    assert doc["type"] == "urn:motet:problem:body-too-large"
    assert invoker.calls == 0


async def _write_all_then_read(url: str, head: bytes, body: bytes) -> bytes:
    stream = await connect(url)
    with trio.fail_after(GENEROUS):
        await stream.send_all(head + body)  # raises on a reset before the answer is read
        data = await read_until_eof(stream)
    await stream.aclose()
    return data


async def test_raw_client_writing_8_mib_then_reading_gets_the_413(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app)
    head = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % EIGHT_MIB
    )
    response, doc = _split(await _write_all_then_read(url, head, b"x" * EIGHT_MIB))
    assert response.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in response.lower()
    assert str(EIGHT_MIB) in doc["detail"]


async def test_raw_chunked_client_writing_8_mib_then_reading_gets_the_413(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app)
    head = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"y" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(128)) + b"0\r\n\r\n"
    response, doc = _split(await _write_all_then_read(url, head, body))
    assert response.startswith(b"HTTP/1.1 413")
    assert "4096" in doc["detail"]


async def test_a_protocol_error_is_answered_to_a_client_still_writing(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app)
    response, doc = _split(
        await _write_all_then_read(url, b"NOT HTTP AT ALL\r\n\r\n", b"z" * (2 * 1024 * 1024))
    )
    assert response.startswith(b"HTTP/1.1 400")
    assert doc["type"] == "urn:motet:problem:bad-request"


async def test_lingering_is_bounded_in_bytes(app: Any, start_server: Starter) -> None:
    url = await start_server(app, linger_max_bytes=256 * 1024)
    stream = await connect(url)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    # A client that keeps sending is cut off once the server has dropped the bound (twice:
    # once by the route, once by the connection): its writes then fail.
    sent = 0
    with trio.fail_after(GENEROUS):
        try:
            while True:
                await stream.send_all(b"w" * 65536)
                sent += 65536
        except trio.BrokenResourceError:
            pass
    await stream.aclose()
    assert sent < 64 * 1024 * 1024


async def test_lingering_is_bounded_in_time(app: Any, start_server: Starter) -> None:
    url = await start_server(app, linger_timeout=0.2)
    stream = await connect(url)
    # The body never comes, and the client never closes: the server closes after
    # linger_timeout (twice: route, then connection) anyway.
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    head, doc = _split(await read_until_eof(stream))
    await stream.aclose()
    assert head.startswith(b"HTTP/1.1 413")
    assert doc["type"] == "urn:motet:problem:body-too-large"
