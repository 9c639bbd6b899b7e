"""POST /messages: validate, store as pending in state "messages", enqueue `message.sent`.

Queue options of `message.sent` (retries, concurrency, dead letter queue) are in motet.toml.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import attrs

from motet import Context, Request

Priority = Literal["low", "normal", "high"]


@attrs.frozen
class NewMessage:
    text: str = attrs.field(validator=[attrs.validators.min_len(1), attrs.validators.max_len(500)])
    priority: Priority = "normal"
    metadata: dict[str, str] | None = None


@attrs.frozen
class MessageAccepted:
    messageId: str
    status: str


config = {
    "name": "SendMessage",
    "description": "Receives messages and enqueues them for background processing",
    "triggers": [
        {
            "type": "http",
            "method": "POST",
            "path": "/messages",
            "bodySchema": NewMessage,
            "responseSchema": {200: MessageAccepted},
        },
    ],
    "enqueues": ["message.sent"],
    "flows": ["messages"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    body: NewMessage = request.body
    message_id = f"msg-{uuid.uuid4().hex[:12]}"
    ctx.logger.info("Received message", messageId=message_id, priority=body.priority)

    await ctx.state.set(
        "messages",
        message_id,
        {
            "messageId": message_id,
            "text": body.text,
            "priority": body.priority,
            "metadata": body.metadata,
            "status": "pending",
            "createdAt": ctx.now().isoformat(),
        },
    )
    await ctx.enqueue(
        {
            "topic": "message.sent",
            "data": {"messageId": message_id, "text": body.text, "priority": body.priority},
        }
    )
    return {"status": 200, "body": MessageAccepted(messageId=message_id, status="enqueued")}
