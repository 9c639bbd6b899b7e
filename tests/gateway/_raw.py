"""Raw-socket helpers for tests that must see exactly what the server sends and when it
closes."""

from __future__ import annotations

import trio

GENEROUS = 5.0


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def connect(url: str) -> trio.SocketStream:
    return await trio.open_tcp_stream("127.0.0.1", port_of(url))


def request_bytes(path: str, *, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: test\r\n" + extra + b"\r\n"


async def read_response(stream: trio.SocketStream) -> bytes:
    """Read one response with a Content-Length body; leave the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, f"EOF before a full response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        assert chunk
        body += chunk
    return head


async def read_until_eof(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(GENEROUS):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data
