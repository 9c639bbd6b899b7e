"""Fire and forget: nothing waits for this job or tracks it."""

from __future__ import annotations

from typing import Any

from motet import Context

config = {
    "type": "event",
    "name": "LogEvent",
    "subscribes": ["log.event"],
    "flows": ["jobs"],
}


async def handler(event: dict[str, Any], ctx: Context) -> None:
    # Stands for a call to an external log service (Datadog, ...).
    ctx.logger.info("Event shipped to log service", event=event["event"])
