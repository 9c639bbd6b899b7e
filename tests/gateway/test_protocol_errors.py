"""Requests the HTTP/1.1 parser refuses, and requests framed two ways, on raw sockets: each
is answered with a problem document that has a trace id, and the connection is closed."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from ._raw import GENEROUS, connect, read_until_eof
from .conftest import DirectInvoker, Starter


def _parse(data: bytes) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return lines[0], headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "slug"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad-request"),
        (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400, "bad-request"),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
            "bad-request",
        ),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400, "bad-request"),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
            400,
            "bad-request",
        ),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "bad-request"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http-version-not-supported"),
        (b"GET /pets/1 HTTP/3.0\r\nHost: t\r\n\r\n", 505, "http-version-not-supported"),
    ],
    ids=[
        "garbage",
        "bad-header",
        "conflicting-length",
        "negative-length",
        "bad-chunk-size",
        "non-ascii-target",
        "http2-preface",
        "http3-version",
    ],
)
async def test_unparseable_requests_get_problem_json_with_a_trace_id(
    app: Any,
    invoker: DirectInvoker,
    start_server: Starter,
    request_bytes: bytes,
    status: int,
    slug: str,
) -> None:
    url = await start_server(app)
    stream = await connect(url)
    await stream.send_all(request_bytes)
    line, headers, doc = _parse(await read_until_eof(stream))
    await stream.aclose()
    assert line.startswith(b"HTTP/1.1 %d" % status)
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert doc["type"] == f"urn:motet:problem:{slug}"
    assert doc["status"] == status
    assert doc["trace_id"] == headers["x-trace-id"] and len(doc["trace_id"]) == 32
    assert invoker.calls == 0


async def test_a_100_kb_url_gets_431_problem_json(app: Any, start_server: Starter) -> None:
    url = await start_server(app)
    stream = await connect(url)
    with trio.fail_after(GENEROUS):
        await stream.send_all(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        data = await read_until_eof(stream)
    await stream.aclose()
    line, headers, doc = _parse(data)
    assert line.startswith(b"HTTP/1.1 431")
    assert doc["type"] == "urn:motet:problem:request-header-fields-too-large"
    assert doc["trace_id"] == headers["x-trace-id"]


async def test_content_length_with_transfer_encoding_is_answered_then_closed(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    """RFC 9112 §6.1. A proxy that frames by Content-Length sees one request whose body is
    `0\\r\\n\\r\\nGET /pets/2 ...`; the server frames by Transfer-Encoding and must not serve
    the rest as a second ("smuggled") request on the same connection."""
    url = await start_server(app)
    smuggled = b"GET /pets/smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    body = b'7\r\n{"a":1}\r\n0\r\n\r\n' + smuggled
    stream = await connect(url)
    await stream.send_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body
    )
    data = await read_until_eof(stream)
    await stream.aclose()
    assert data.count(b"HTTP/1.1 ") == 1, data
    line, headers, doc = _parse(data)
    assert line.startswith(b"HTTP/1.1 200")
    assert headers["connection"] == "close"
    assert doc["body"] == {"a": 1}
    assert invoker.calls == 1
