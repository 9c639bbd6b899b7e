"""A small Server-Sent Events client over trio sockets and h11 (httpx's streaming iterators
are async generators nested several deep, which pytest flags when a test stops reading an
endless stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import h11
import trio


class SseClient:
    def __init__(self, stream: trio.SocketStream, conn: h11.Connection) -> None:
        self.stream = stream
        self.conn = conn
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""  # of a non-200 answer
        self._buffer = ""
        self.ended = False

    async def _event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            return event

    async def start(self) -> None:
        event = await self._event()
        assert isinstance(event, h11.Response), event
        self.status = event.status_code
        self.headers = {k.decode(): v.decode() for k, v in event.headers}
        if self.status != 200:
            while not isinstance(event := await self._event(), h11.EndOfMessage):
                if isinstance(event, h11.Data):
                    self.body += event.data

    async def next(self) -> dict[str, Any]:
        """The next event: {"id", "event", "data" (parsed JSON)}; comments are skipped;
        EOFError once the server ended the stream."""
        while True:
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                parsed = _parse(block)
                if parsed is not None:
                    return parsed
            if self.ended:
                raise EOFError("the stream ended")
            event = await self._event()
            if isinstance(event, h11.Data):
                self._buffer += bytes(event.data).decode()
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self.ended = True


def _parse(block: str) -> dict[str, Any] | None:
    event: dict[str, Any] = {}
    for line in block.split("\n"):
        if not line or line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            event["data"] = json.loads(value)
        elif field in ("id", "event", "retry"):
            event[field] = value
    return event if "data" in event else None


@asynccontextmanager
async def open_sse(url: str, path: str, **headers: str) -> AsyncIterator[SseClient]:
    """GET `path` as an event stream; the client is yielded after the response head (its
    `status`, `headers`; `body` when it is not 200)."""
    parts = urlsplit(url)
    stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        conn = h11.Connection(h11.CLIENT)
        raw = [("host", parts.netloc), ("accept", "text/event-stream")]
        raw += [(k.replace("_", "-"), v) for k, v in headers.items()]
        await stream.send_all(conn.send(h11.Request(method="GET", target=path, headers=raw)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        client = SseClient(stream, conn)
        await client.start()
        yield client
    finally:
        await stream.aclose()
