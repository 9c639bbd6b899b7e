"""Trace ids at the edge: every request starts a trace or joins the caller's."""

from __future__ import annotations

import re

_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")


def accept_trace_id(value: str | None) -> str | None:
    """An incoming trace id joins its trace when it has motet's id form (32 hex digits;
    a UUID with dashes is accepted and normalized). Anything else starts a new trace."""
    if not value:
        return None
    candidate = value.strip().lower().replace("-", "")
    return candidate if _TRACE_ID.match(candidate) else None
