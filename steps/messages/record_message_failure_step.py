"""Subscribed to `message.failed`, the dead letter queue of `message.sent` (motet.toml).

motet publishes there once ProcessMessage has used up its retries, with what failed and why.
"""

from __future__ import annotations

from typing import Any, TypedDict

from motet import Context, queue


class DeadLetter(TypedDict):
    """What motet publishes on a dead letter queue."""

    topic: str  # the topic the message was on
    step: str  # the step that gave up
    message_id: str
    data: Any  # the original message
    error: str  # the last error
    attempts: int
    traceback: str | None  # of the last attempt, when it raised
    dead_letter_id: str  # `motet dlq show/redrive` it; kept in the store as well


config = {
    "name": "RecordMessageFailure",
    "description": "Record messages that failed every attempt",
    "triggers": [queue("message.failed", input=DeadLetter)],
    "enqueues": [],
    "flows": ["messages"],
}


async def handler(letter: DeadLetter, ctx: Context) -> None:
    message_id = letter["data"]["messageId"]
    ctx.logger.error(
        "Message dead-lettered",
        messageId=message_id,
        step=letter["step"],
        attempts=letter["attempts"],
        error=letter["error"],
    )
    await ctx.state.set(
        "message-failures",
        message_id,
        {
            "messageId": message_id,
            "error": letter["error"],
            "attempts": letter["attempts"],
            "failedStep": letter["step"],
            "deadLetteredAt": ctx.now().isoformat(),
        },
    )
    await ctx.state.update("messages", message_id, {"status": "dead-lettered"})
