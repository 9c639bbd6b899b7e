"""Turning an ASGI request into a motet `Request`, and a handler's return into a reply.

Reading enforces the body limit while the body streams in (a declared Content-Length over
the limit is refused before a byte is read). Any refusal is a `Rejected`, which the app
turns into a problem response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
import cattrs
import trio
from hypercorn.typing import ASGIReceiveCallable, HTTPScope

from .._errors import InputValidationError
from ..steps._http import Request, Response
from ..steps._schema import to_json, validate
from ._json_depth import DEFAULT_MAX_DEPTH, depth_detail, too_deep
from ._problem import (
    BODY_TOO_LARGE,
    INVALID_BODY,
    INVALID_QUERY,
    JSON_TOO_DEEP,
    MALFORMED_JSON,
    REQUEST_TIMEOUT,
    UNSUPPORTED_MEDIA_TYPE,
    ProblemKind,
    validation_errors,
)
from ._query import coerce_query
from ._routes import Route

_RESPONSE_KEYS = frozenset({"status", "body", "headers"})


class Rejected(Exception):
    """The request is refused before its handler runs."""

    def __init__(
        self,
        kind: ProblemKind,
        detail: str,
        *,
        errors: list[str] | None = None,
        close: bool = False,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.errors = errors
        self.close = close  # answer with `Connection: close`: the body was not read to its end
        super().__init__(detail)

    def extra(self) -> dict[str, Any]:
        return {"errors": validation_errors(self.errors)} if self.errors is not None else {}


class InvalidResponse(Exception):
    """A handler returned something that is not a response (says what and what was got)."""


def is_json_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nobody to answer."""


class BodyReader:
    """Reads one request body, refusing it as soon as it passes `limit`. It sets no
    deadline itself (the caller's cancel scope is the read deadline); `received` says how
    far it got."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.received = 0

    async def read(self, receive: ASGIReceiveCallable, headers: Mapping[str, str]) -> bytes:
        limit = self.limit
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Rejected(
                BODY_TOO_LARGE,
                f"the body declares {declared} bytes; the limit is {limit} bytes",
                close=True,
            )
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            self.received += len(chunk)
            if self.received > limit:
                raise Rejected(
                    BODY_TOO_LARGE,
                    f"the body is larger than the limit of {limit} bytes",
                    close=True,
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def timed_out(self, seconds: float) -> Rejected:
        return Rejected(
            REQUEST_TIMEOUT,
            f"the request body did not arrive within {seconds:g} "
            f"s ({self.received} bytes received)",
            close=True,
        )


async def discard_body(receive: ASGIReceiveCallable, *, seconds: float, limit: int) -> None:
    """After an early answer, read and drop the rest of the request body, for at most
    `seconds` and `limit` bytes. A client that writes its whole body before reading (urllib)
    then reads the answer instead of a reset; and hypercorn, which hands body chunks to the
    app through a small bounded queue, never blocks on a queue nobody empties."""
    received = 0
    with trio.move_on_after(seconds):
        while received <= limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Made once: json.loads with a keyword argument builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def decode_json(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    if too_deep(raw, max_depth):
        raise Rejected(JSON_TOO_DEEP, depth_detail(max_depth))
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise Rejected(MALFORMED_JSON, f"the body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Rejected(
            MALFORMED_JSON, f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise Rejected(MALFORMED_JSON, str(exc)) from None


def parse_body(
    route: Route,
    mimetype: str,
    raw: bytes,
    converter: cattrs.Converter,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """The handler's `request.body`: structured against the trigger's schema when it has one,
    else the parsed JSON (None for an empty or non-JSON body; `raw_body` keeps the bytes)."""
    schema = route.trigger.body
    if schema is None:
        if not raw or (mimetype and not is_json_type(mimetype)):
            return None
        return decode_json(raw, max_depth)
    if raw and not is_json_type(mimetype):
        got = mimetype or "no Content-Type"
        raise Rejected(
            UNSUPPORTED_MEDIA_TYPE,
            f"{route.trigger.method} {route.path.written} takes application/json, got {got}",
        )
    if not raw.strip():
        raise Rejected(
            INVALID_BODY, "a JSON body is required", errors=["a JSON body is required @ $.body"]
        )
    payload = decode_json(raw, max_depth)
    try:
        return validate(converter, payload, schema, root="$.body", what="request body")
    except InputValidationError as exc:
        raise Rejected(
            INVALID_BODY, f"{len(exc.messages)} problem(s) in the request body", errors=exc.messages
        ) from None


def parse_query(query_string: bytes) -> dict[str, str | list[str]]:
    query: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        known = query.get(name)
        if known is None:
            query[name] = value
        elif isinstance(known, list):
            known.append(value)
        else:
            query[name] = [known, value]
    return query


def check_query(
    route: Route, query: Mapping[str, str | list[str]], converter: cattrs.Converter
) -> None:
    schema = route.trigger.query
    if schema is None:
        return
    try:
        validate(
            converter, coerce_query(query, schema), schema, root="$.query", what="query parameters"
        )
    except InputValidationError as exc:
        raise Rejected(
            INVALID_QUERY,
            f"{len(exc.messages)} problem(s) in the query parameters",
            errors=exc.messages,
        ) from None


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased names (hypercorn already lowers them); repeated headers joined by ', '."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def mimetype_of(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def build_request(
    route: Route,
    scope: HTTPScope,
    receive: ASGIReceiveCallable,
    headers: Mapping[str, str],
    path_params: Mapping[str, str],
    *,
    trace_id: str,
    converter: cattrs.Converter,
    reader: BodyReader,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Request:
    # The body is read first even when the query is wrong: answering before the client has
    # finished sending would close the socket under unread data and lose the answer.
    raw = await reader.read(receive, headers)
    query = parse_query(scope["query_string"]) if scope["query_string"] else {}
    check_query(route, query, converter)
    return Request(
        method=scope["method"],
        path=scope["path"],
        path_params=dict(path_params),
        query=query,
        headers=headers,
        body=parse_body(route, mimetype_of(headers), raw, converter, max_depth=max_depth),
        trace_id=trace_id,
        raw_body=raw,
    )


@attrs.frozen
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]  # lower-case names; content-type included when there is a body


def make_reply(result: Any, converter: cattrs.Converter) -> Reply:
    """A handler's return as a reply: a `Response`, a `{"status", "body", "headers"}` dict,
    None (204), or any other value (200 with it as the JSON body)."""
    headers: Mapping[str, Any] | None
    if isinstance(result, Response):
        status, body, headers = result.status, result.body, result.headers
    elif isinstance(result, Mapping) and "status" in result and result.keys() <= _RESPONSE_KEYS:
        status, body, headers = result["status"], result.get("body"), result.get("headers")
    elif result is None:
        return Reply(204, b"", {})
    else:
        status, body, headers = 200, result, None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidResponse(f"response status must be an int in 100..599, got {status!r}")
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str | int):
            raise InvalidResponse(f"response headers must map str to str, got {name!r}: {value!r}")
        out[name.lower()] = str(value)
    return Reply(status, _encode(body, out, converter), out)


def _encode(body: Any, headers: dict[str, str], converter: cattrs.Converter) -> bytes:
    declared = headers.get("content-type", "")
    mimetype = declared.split(";", 1)[0].strip().lower()
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray) and not is_json_type(mimetype):
        headers.setdefault("content-type", "application/octet-stream")
        return bytes(body)
    if isinstance(body, str) and mimetype and not is_json_type(mimetype):
        return body.encode("utf-8")
    try:
        document = to_json(converter, body)
    except TypeError as exc:
        raise InvalidResponse(f"response body is not JSON: {exc}") from exc
    headers.setdefault("content-type", "application/json")
    return _ENCODER.encode(document).encode()
