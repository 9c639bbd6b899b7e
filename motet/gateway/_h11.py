"""hypercorn's HTTP/1.1 protocol with motet's rules for hostile or unlucky clients.

A subclass of `hypercorn.protocol.h11.H11Protocol` (used by `_tcp.MotetTCPServer`, never
installed process-wide). What it changes, and why:

- **Protocol errors are problem+json.** A request h11 cannot parse (a garbage request line,
  a header block over `h11_max_incomplete_size` such as a 100 KB URL, conflicting or
  negative Content-Length) is answered with a problem document and a trace id instead of
  hypercorn's empty body, then the connection is closed.
- **Content-Length together with Transfer-Encoding** (RFC 9112 §6.1): the request is framed
  by Transfer-Encoding, answered, and the connection is closed after the answer, so bytes a
  Content-Length-framing proxy took for body are never served as a second request.
- **A version other than HTTP/1.0 or 1.1** (h11 parses any) is refused with 505, so the
  HTTP/2 preface `PRI * HTTP/2.0` is not served as a request for the path `*`.
- **A target that is not ASCII** is refused with 400 (hypercorn would raise while building
  the ASGI scope and drop the connection without an answer).
- **While the server drains** (after its shutdown trigger), every response carries
  `Connection: close`, so a keep-alive client knows not to send another request on it.
- **A request that arrived behind the last response before the drain** (keep-alive clients
  send the next request as soon as they have read an answer) is served, with
  `Connection: close`, instead of being read and dropped.
- **HTTP/1.1 only.** hypercorn switches a plain connection to HTTP/2 on `PRI *` or an
  `Upgrade: h2c`; motet serves HTTP/1.1 (HTTP/2 is a proxy's job), so that every rule here
  holds for every connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from itertools import chain
from typing import Any

import h11
from hypercorn.events import Closed, Updated
from hypercorn.events import Event as ServerEvent
from hypercorn.protocol.events import Body, Data, EndBody, Response
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import STREAM_ID, H11Protocol

from .._envelope import new_id
from ._options import GatewayOptions
from ._problem import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    PROBLEM_CONTENT_TYPE,
    VERSION_NOT_SUPPORTED,
    ProblemKind,
    http_problem_kind,
    problem_body,
)

_DETAILS = {
    400: "the request is not valid HTTP/1.1",
    431: "the request line and headers are too large",
}


def protocol_problem(status: int) -> ProblemKind:
    if status == 400:
        return BAD_REQUEST
    if status == 431:
        return HEADERS_TOO_LARGE
    if status == 505:
        return VERSION_NOT_SUPPORTED
    return http_problem_kind(status, "Bad Request" if status < 500 else "Server Error")


def _has_close(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"connection" and b"close" in value.lower() for name, value in headers
    )


class MotetH11Protocol(H11Protocol):
    def __init__(
        self, *args: Any, options: GatewayOptions, **kwargs: Any
    ) -> None:  # the arguments of H11Protocol
        super().__init__(*args, **kwargs)
        self.options = options
        self._trace_header = options.trace_header.encode("latin-1")
        self.close_after_response = False  # this request's answer ends the connection
        self.closing = False  # the connection is being closed: parse nothing more

    def draining(self) -> bool:
        return bool(self.context.terminated.is_set())

    async def close_reading(self) -> None:
        """Stop parsing: wake a reader parked on h11's PAUSED state so it can return to the
        socket (and discard what still arrives)."""
        self.closing = True
        await self.can_read.set()

    async def _handle_events(self) -> None:
        # hypercorn 0.18's loop, except that a PAUSED connection that is being closed stops
        # parsing instead of waiting forever for a next request cycle that never starts.
        while True:
            if self.connection.they_are_waiting_for_100_continue:
                await self._send_h11_event(
                    h11.InformationalResponse(
                        status_code=100, headers=self.config.response_headers("h11")
                    )
                )
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as error:
                if self.connection.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                    await self._send_error_response(error.error_status_hint)
                await self.send(Closed())
                break
            if isinstance(event, h11.Request):
                await self.send(Updated(idle=False))
                await self._check_protocol(event)
                await self._create_stream(event)
            elif event is h11.PAUSED:
                if self.closing:
                    break
                await self.can_read.clear()
                await self.can_read.wait()
                if self.closing:
                    break
            elif (
                isinstance(event, h11.ConnectionClosed)
                or event is h11.NEED_DATA
                or self.stream is None
            ):
                break
            elif isinstance(event, h11.Data):
                await self.stream.handle(Body(stream_id=STREAM_ID, data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                await self.stream.handle(EndBody(stream_id=STREAM_ID))
            elif isinstance(event, Data):  # a websocket's pass-through
                await self.stream.handle(event)

    async def _maybe_recycle(self) -> None:
        """hypercorn closes after each response once the server drains. A request that
        already arrived behind that response (a keep-alive client does not wait) would
        then be read and never answered: serve it (its answer says `Connection: close`)."""
        connection = self.connection
        if (
            self.draining()
            and isinstance(connection, h11.Connection)
            and connection.our_state is h11.DONE
            and connection.their_state is h11.DONE
            and connection.trailing_data[0]
            and not self.close_after_response
        ):
            await self._close_stream()
            connection.start_next_cycle()
            await self.can_read.set()
            await self.send(Updated(idle=True))
            return
        await super()._maybe_recycle()

    async def _check_protocol(self, event: h11.Request) -> None:
        """No switch to HTTP/2 (see the module docstring)."""

    async def _create_stream(self, request: h11.Request) -> None:
        names = {name for name, _ in request.headers}  # h11 lower-cases names
        if b"content-length" in names and b"transfer-encoding" in names:
            self.close_after_response = True
        if request.http_version not in (b"1.0", b"1.1"):
            # h11 parses any version; `PRI * HTTP/2.0` (an HTTP/2 preface) would otherwise
            # be served as an HTTP/1.1 request for the path `*`.
            await self.refuse(505, "this server speaks HTTP/1.1 (and 1.0) only")
            return
        if not request.target.isascii():
            await self.refuse(400, "the request target is not ASCII (percent-encode it)")
            return
        await super()._create_stream(request)

    def stream_send(self, event: StreamEvent) -> Coroutine[Any, Any, None]:
        # Not a coroutine of its own: it returns hypercorn's, so a response's sends do not
        # resume one more frame at every checkpoint on their way to the socket.
        if (
            isinstance(event, Response)
            and event.status_code >= 200
            and (self.close_after_response or self.draining())
            and not _has_close(event.headers)
        ):
            event = dataclasses.replace(event, headers=[*event.headers, (b"connection", b"close")])
        return super().stream_send(event)

    async def _send_error_response(self, status_code: int) -> None:
        """hypercorn's answer to a request h11 refused, as a problem document."""
        await self._send_problem(status_code, _DETAILS.get(status_code, "bad request"))

    async def refuse(self, status: int, detail: str) -> None:
        """Answer the request being read with a problem and close the connection."""
        await self._send_problem(status, detail)
        await self.send(Closed())

    async def _send_problem(self, status: int, detail: str) -> None:
        trace_id = new_id()
        body = problem_body(protocol_problem(status), detail, instance=None, trace_id=trace_id)
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (self._trace_header, trace_id.encode()),
        ]
        await self._send_h11_event(
            h11.Response(
                status_code=status,
                headers=list(chain(headers, self.config.response_headers("h11"))),
            )
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())


Send = Callable[[ServerEvent], Awaitable[None]]
