"""A state trigger: runs whenever a document of "messages" is written with
`status == "processed"`; `input` is the change (`key`, `value`, `old_value`, `event`)."""

from __future__ import annotations

from typing import Any

from motet import Context

config = {
    "name": "NotifyCompletion",
    "description": "Send a notification when a message is processed",
    "triggers": [{"type": "state", "namespace": "messages", "filter": {"status": "processed"}}],
    "flows": ["messages"],
}


async def handler(change: dict[str, Any], ctx: Context) -> None:
    ctx.logger.info("Message completed", messageId=change["key"], data=change["value"])
    await send_notification(
        ctx,
        {
            "type": "message_completed",
            "messageId": change["key"],
            "completedAt": change["value"]["processedAt"],
        },
    )


async def send_notification(ctx: Context, notification: dict[str, Any]) -> None:
    # Stands for an email or webhook call.
    ctx.logger.info("Notification sent", **notification)
