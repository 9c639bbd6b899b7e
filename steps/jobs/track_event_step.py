"""POST /events: fire and forget. The caller gets 202; LogEvent ships the event later."""

from __future__ import annotations

from typing import Any

import attrs

from motet import Context, Request


@attrs.frozen
class TrackedEvent:
    event: str = attrs.field(validator=attrs.validators.min_len(1))


config = {
    "type": "api",
    "name": "TrackEvent",
    "method": "POST",
    "path": "/events",
    "bodySchema": TrackedEvent,
    "emits": ["log.event"],
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    await ctx.emit({"topic": "log.event", "data": {"event": request.body.event}})
    return {"status": 202, "body": {"accepted": True}}
