"""The handler's HTTP contract: what an HTTP step's handler receives and may return, and the
one seam (`HttpInvoker`) through which the gateway runs a handler.

These live in the step layer, beside `HttpTrigger`, so the dispatcher and the user's steps can
name them without importing the gateway (and with it a web framework). The runtime's invoker
is `motet.gateway._invoker.RuntimeInvoker`; tests pass their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs

from .._envelope import JSON
from ._model import HttpTrigger, Step

# The keys a Motia 0.x Python handler reads from its dict-like request, in the order they are
# listed; `path_params` and `query_params` (Motia 1.0's attribute names) are read too.
_MAPPING_KEYS = ("body", "pathParams", "queryParams", "headers", "method", "path")
_ALIASES = {"path_params": "pathParams", "query_params": "queryParams"}


@attrs.frozen
class Request(Mapping[str, Any]):
    """An HTTP request as a handler sees it. `body` is structured against the trigger's
    `body` schema when there is one, else the parsed JSON (or None).

    It also reads as a read-only mapping with Motia's keys, so handlers written for Motia's
    dict-like request run unchanged: `req["body"]`, `req.get("pathParams")`,
    `req["queryParams"]`, `req["headers"]`, plus `method` and `path`."""

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

    @property
    def query_params(self) -> Mapping[str, str | list[str]]:  # Motia 1.0's attribute
        return self.query

    # -- the read-only mapping view (Motia's dict-like request) --------------------------

    def __getitem__(self, key: str) -> Any:
        name = _ALIASES.get(key, key)
        if name not in _MAPPING_KEYS:
            raise KeyError(key)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(_MAPPING_KEYS)

    def __len__(self) -> int:
        return len(_MAPPING_KEYS)

    def __contains__(self, key: object) -> bool:
        return key in _MAPPING_KEYS or key in _ALIASES


@attrs.frozen
class Response:
    """A handler may return this or a `{"status", "body", "headers"}` dict."""

    status: int = 200
    body: JSON = None
    headers: Mapping[str, str] = attrs.Factory(dict)


class RequestDeclined(Exception):
    """An HTTP trigger's `condition` was false for this request: the step does not handle
    it, and the gateway answers 404 (as if no step had the route), with this message as the
    problem's detail."""

    def __init__(self, step: str, method: str, path: str) -> None:
        self.step = step
        super().__init__(f"the condition of step {step!r} declined {method} {path}")


class HttpInvoker(Protocol):
    """The runtime side of the gateway (a seam of two methods): runs an HTTP step's handler
    with a fresh context, and writes the gateway's error lines.

    Returns whatever the handler returned (the gateway normalizes it). A handler exception
    propagates unchanged; emits made by the handler are durable before this returns. A
    trigger's `condition` that declines the request raises `RequestDeclined` (-> 404).
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
