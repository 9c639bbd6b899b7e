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
- **A target that is not ASCII** is refused with 400 (hypercorn would raise while building
  the ASGI scope and drop the connection without an answer).
- **While the server drains** (after its shutdown trigger), every response carries
  `Connection: close`, so a keep-alive client knows not to send another request on it.
- **HTTP/1.1 only.** hypercorn switches a plain connection to HTTP/2 on `PRI *` or an
  `Upgrade: h2c`; motet serves HTTP/1.1 (HTTP/2 is a proxy's job), so that every rule here
  holds for every connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from itertools import chain
from typing import Any

import h11
from hypercorn.events import Closed
from hypercorn.events import Event as ServerEvent
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import Response
from hypercorn.protocol.h11 import H11Protocol

from .._envelope import new_id
from ._options import GatewayOptions
from ._problem import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    PROBLEM_CONTENT_TYPE,
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

    def draining(self) -> bool:
        return bool(self.context.terminated.is_set())

    async def _check_protocol(self, event: h11.Request) -> None:
        """No switch to HTTP/2 (see the module docstring)."""

    async def _create_stream(self, request: h11.Request) -> None:
        names = {name for name, _ in request.headers}  # h11 lower-cases names
        if b"content-length" in names and b"transfer-encoding" in names:
            self.close_after_response = True
        if not request.target.isascii():
            await self.refuse(400, "the request target is not ASCII (percent-encode it)")
            return
        await super()._create_stream(request)

    async def stream_send(self, event: StreamEvent) -> None:
        if (
            isinstance(event, Response)
            and event.status_code >= 200
            and (self.close_after_response or self.draining())
            and not _has_close(event.headers)
        ):
            event = dataclasses.replace(event, headers=[*event.headers, (b"connection", b"close")])
        await super().stream_send(event)

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
