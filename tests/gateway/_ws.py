"""A minimal WebSocket client over trio sockets and wsproto (already installed with
hypercorn), for tests of the gateway's WebSocket endpoints."""

from __future__ import annotations

from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)


class Rejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"rejected with {status}")
        self.status = status
        self.body = body


class WebSocket:
    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self.pending: list[object] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None

    @classmethod
    async def connect(cls, url: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebSocket:
        parts = urlsplit(url)
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        ws = WSConnection(ConnectionType.CLIENT)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc
        await stream.send_all(
            ws.send(Request(host=host, target=target, extra_headers=headers or []))
        )
        self = cls(stream, ws)
        try:
            return await self._handshake()
        except BaseException:
            await stream.aclose()
            raise

    async def _handshake(self) -> WebSocket:
        status, body = 0, b""
        while True:
            events = await self._events()
            for n, event in enumerate(events):
                if isinstance(event, AcceptConnection):
                    # The server's first message may come in the same read as its 101.
                    self.pending.extend(events[n + 1 :])
                    return self
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise Rejected(status, body)
                else:
                    self.pending.append(event)

    async def _events(self) -> list[object]:
        data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    async def receive_text(self) -> str | None:
        """The next text message; None once the server closed (see `close_code`)."""
        while True:
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, TextMessage):
                    return event.data
                if isinstance(event, CloseConnection):
                    self.close_code, self.close_reason = event.code, event.reason
                    return None
            self.pending.extend(await self._events())

    async def aclose(self) -> None:
        await self.stream.aclose()
