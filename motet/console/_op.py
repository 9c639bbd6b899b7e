"""What the operator's endpoints take and give: the request below `/_motet`, the runtime they
read, the reply, and `BadRequest` for wrong input. Apart from the endpoints (`_api`), which load
only for the first operator request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..gateway._json_depth import DEFAULT_MAX_DEPTH, depth_detail, too_deep

if TYPE_CHECKING:
    from .._observer import RuntimeView
    from ..observe import Telemetry

__all__ = ["BadRequest", "Endpoint", "OpReply", "OpRequest", "Operated", "reply"]


class BadRequest(Exception):
    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@attrs.frozen
class OpRequest:
    method: str
    path: str  # below /_motet, e.g. "/traces/abc"
    query: Mapping[str, str]
    body: bytes = b""
    max_json_depth: int = DEFAULT_MAX_DEPTH

    def text(self, name: str) -> str | None:
        value = self.query.get(name)
        return value if value else None

    def number(self, name: str, kind: type[int] | type[float] = int) -> Any:
        value = self.text(name)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise BadRequest(
                f"query parameter {name!r} must be {expected}, got {value!r}"
            ) from None

    def limit(self, default: int) -> int:
        value = self.number("limit")
        return default if value is None else int(value)

    def json(self) -> Any:
        if too_deep(self.body, self.max_json_depth):
            raise BadRequest(depth_detail(self.max_json_depth))
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None


@attrs.frozen
class Operated:
    """What the operator endpoints read: the runtime's read-only view, and its telemetry
    when it records."""

    runtime: RuntimeView
    telemetry: Telemetry | None = None


@attrs.frozen
class OpReply:
    status: int
    body: bytes
    content_type: str = "application/json"


def reply(data: Any, status: int = 200) -> OpReply:
    return OpReply(status, json.dumps(data, separators=(",", ":"), default=repr).encode())


Endpoint = Callable[["Operated", OpRequest], Awaitable[OpReply]]
