"""The background worker for `message.sent`.

A failure is recorded in state and re-raised: the queue retries it (motet.toml: 3 retries,
5 s apart, doubling) and then hands it to the `message.failed` dead letter queue. A text
containing "fail" stands for work that always fails.
"""

from __future__ import annotations

from typing import Literal

import attrs
import trio

from motet import Context


@attrs.frozen
class SentMessage:
    messageId: str
    text: str
    priority: Literal["low", "normal", "high"]


config = {
    "name": "ProcessMessage",
    "description": "Background worker for message processing",
    "triggers": [{"type": "queue", "topic": "message.sent", "input": SentMessage}],
    "enqueues": ["message.processed"],
    "flows": ["messages"],
}

WORK_SECONDS = {"high": 0.1, "normal": 0.5, "low": 1.0}


class ProcessingError(Exception):
    """The text cannot be processed (here: it contains "fail")."""


async def process_text(text: str) -> str:
    if "fail" in text.lower():
        raise ProcessingError(f"cannot process text {text!r}")
    return text.upper()


async def handler(message: SentMessage, ctx: Context) -> None:
    # Log lines carry the message id and the attempt number on their own.
    ctx.logger.info("Processing message", messageId=message.messageId, priority=message.priority)
    try:
        processed_text = await process_text(message.text)
        seconds = WORK_SECONDS[message.priority]
        await trio.sleep(seconds)  # stands for real work; virtual time in tests
    except Exception as exc:
        ctx.logger.error("Message processing failed", messageId=message.messageId, error=str(exc))
        await ctx.state.update(
            "messages",
            message.messageId,
            {
                "status": "failed",
                "error": str(exc),
                "failedAt": ctx.now().isoformat(),
            },
        )
        raise  # the queue retries, then dead-letters

    await ctx.state.update(
        "messages",
        message.messageId,
        {
            "status": "processed",
            "processedAt": ctx.now().isoformat(),
            "processedText": processed_text,
            "processingTime": int(seconds * 1000),
        },
    )
    ctx.logger.info(
        "Message processed successfully",
        messageId=message.messageId,
        processingTime=int(seconds * 1000),
    )
    await ctx.enqueue(
        {
            "topic": "message.processed",
            "data": {"messageId": message.messageId, "processedText": processed_text},
        }
    )
