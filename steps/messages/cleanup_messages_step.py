"""Every night at 02:00 UTC, delete processed messages older than 30 days.

The 7-field expression is seconds, minutes, hours, day, month, weekday, year.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from motet import Context

RETENTION = timedelta(days=30)

config = {
    "name": "CleanupMessages",
    "description": "Clean up old processed messages",
    "triggers": [{"type": "cron", "expression": "0 0 2 * * * *"}],  # every day at 02:00
    "flows": ["messages"],
}


async def handler(_input: Any, ctx: Context) -> None:
    ctx.logger.info("Starting message cleanup")
    messages = await ctx.state.list("messages")
    cutoff = ctx.now() - RETENTION
    deleted = 0
    for message in messages:
        when = datetime.fromisoformat(message.get("processedAt") or message["createdAt"])
        if message["status"] == "processed" and when < cutoff:
            await ctx.state.delete("messages", message["messageId"])
            deleted += 1
    ctx.logger.info("Cleanup completed", totalMessages=len(messages), deletedCount=deleted)
