"""The handler's HTTP contract: what an HTTP step's handler receives and may return, and the
one seam (`HttpInvoker`) through which the gateway runs a handler.

These live in the step layer, beside `HttpTrigger`, so the dispatcher and the user's steps can
name them without importing the gateway (and with it a web framework). The runtime's invoker
is `motet.gateway._invoker.RuntimeInvoker`; tests pass their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from .._envelope import JSON
from ._model import HttpTrigger, Step


@attrs.frozen
class Request:
    """An HTTP request as a handler sees it. `body` is structured against the trigger's
    `body` schema when there is one, else the parsed JSON (or None)."""

    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, str | list[str]]  # a repeated parameter is a list
    headers: Mapping[str, str]  # lower-cased names
    body: Any
    trace_id: str
    raw_body: bytes = b""

    @property
    def pathParams(self) -> Mapping[str, str]:  # Motia's name
        return self.path_params

    @property
    def queryParams(self) -> Mapping[str, str | list[str]]:  # Motia's name
        return self.query


@attrs.frozen
class Response:
    """A handler may return this or a `{"status", "body", "headers"}` dict."""

    status: int = 200
    body: JSON = None
    headers: Mapping[str, str] = attrs.Factory(dict)


class HttpInvoker(Protocol):
    """The runtime side of the gateway (a seam of two methods): runs an HTTP step's handler
    with a fresh context, and writes the gateway's error lines.

    Returns whatever the handler returned (the gateway normalizes it). A handler exception
    propagates unchanged; emits made by the handler are durable before this returns.
    """

    async def invoke_http(self, step: Step, trigger: HttpTrigger, request: Request) -> Any: ...

    def log_error(
        self,
        message: str,
        *,
        trace_id: str,
        step: str | None,
        exc_info: BaseException | None = None,
        **fields: Any,
    ) -> None:
        """Write an error log line (used for 500s: the error id appears in it), with the
        traceback of `exc_info` under it."""
        ...
