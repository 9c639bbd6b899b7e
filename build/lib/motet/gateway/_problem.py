"""Error responses as `application/problem+json` (RFC 9457).

Every error the gateway answers is one of the `Problem` kinds below; none ever carries a
traceback or an exception's text from inside a handler (a 500 carries an `error_id` that the
log line of the failure repeats, so an operator can find the cause).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

PROBLEM_CONTENT_TYPE = "application/problem+json"


@attrs.frozen
class ProblemKind:
    """A class of error: its `type` URI (a URN: it names the kind, it is not a web page),
    its HTTP status and its title (the same for every occurrence)."""

    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return f"urn:motet:problem:{self.slug}"


MALFORMED_JSON = ProblemKind("malformed-json", 400, "Malformed JSON body")
INVALID_BODY = ProblemKind("invalid-body", 400, "Invalid request body")
INVALID_QUERY = ProblemKind("invalid-query", 400, "Invalid query parameters")
NOT_FOUND = ProblemKind("not-found", 404, "Not Found")
METHOD_NOT_ALLOWED = ProblemKind("method-not-allowed", 405, "Method Not Allowed")
REQUEST_TIMEOUT = ProblemKind("request-timeout", 408, "Request Timeout")
BODY_TOO_LARGE = ProblemKind("body-too-large", 413, "Request body too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind("unsupported-media-type", 415, "Unsupported Media Type")
HANDLER_ERROR = ProblemKind("handler-error", 500, "Internal Server Error")
INVALID_RESPONSE = ProblemKind("invalid-response", 500, "Internal Server Error")
INTERNAL_ERROR = ProblemKind("internal-error", 500, "Internal Server Error")
HANDLER_TIMEOUT = ProblemKind("handler-timeout", 504, "Gateway Timeout")
JSON_TOO_DEEP = ProblemKind("json-too-deep", 400, "JSON body nested too deeply")
# Answered by the HTTP/1.1 layer itself, before any route is known.
BAD_REQUEST = ProblemKind("bad-request", 400, "Bad Request")
HEADERS_TOO_LARGE = ProblemKind(
    "request-header-fields-too-large", 431, "Request Header Fields Too Large"
)
SHUTTING_DOWN = ProblemKind("shutting-down", 503, "Service Unavailable")
HANDLER_CUT = ProblemKind("handler-cut", 503, "Service Unavailable")
VERSION_NOT_SUPPORTED = ProblemKind("http-version-not-supported", 505, "HTTP Version Not Supported")
# The handler's write failed because the backend cannot take writes now (a full disk).
BACKEND_UNAVAILABLE = ProblemKind("backend-unavailable", 503, "Service Unavailable")

# Kinds an HTTP step can answer with on its own, for the OpenAPI document.
STEP_PROBLEMS: tuple[ProblemKind, ...] = (
    MALFORMED_JSON,
    JSON_TOO_DEEP,
    INVALID_BODY,
    INVALID_QUERY,
    REQUEST_TIMEOUT,
    BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    BACKEND_UNAVAILABLE,
)


def http_problem_kind(status: int, title: str) -> ProblemKind:
    """A kind for a plain HTTP error that has no motet-specific meaning."""
    slug = title.lower().replace(" ", "-").replace("'", "")
    return ProblemKind(slug, status, title)


def validation_errors(messages: Sequence[str]) -> list[dict[str, str]]:
    """`"expected int @ $.body.age"` -> `{"detail": "expected int", "path": "$.body.age",
    "message": <the whole line>}`; a message without a path keeps `path` = `$`."""
    out = []
    for message in messages:
        detail, sep, path = message.rpartition(" @ ")
        if not sep:
            detail, path = message, "$"
        out.append({"detail": detail, "path": path, "message": message})
    return out


def problem_body(
    kind: ProblemKind,
    detail: str,
    *,
    instance: str | None,
    trace_id: str,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The document; `instance` (the request path) is None when no request was parsed."""
    document: dict[str, Any] = {
        "type": kind.type,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if instance is not None:
        document["instance"] = instance
    document["trace_id"] = trace_id
    if extra:
        document.update(extra)
    return json.dumps(document, separators=(",", ":")).encode()


def problem_schema() -> dict[str, Any]:
    """JSON Schema of a problem document, for OpenAPI."""
    return {
        "type": "object",
        "title": "Problem",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "trace_id": {"type": "string"},
            "error_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "detail": {"type": "string"},
                        "path": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
        "required": ["type", "title", "status"],
    }
