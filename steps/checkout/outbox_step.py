"""Deliver emails and SMS; one step subscribed to two topics (`ctx.message.topic` says which).
The deliveries are kept in state "outbox", keyed by message id."""

from __future__ import annotations

from typing import Any

from motet import Context

config = {
    "type": "event",
    "name": "Outbox",
    "subscribes": ["email.send", "sms.send"],
    "flows": ["checkout"],
}


async def handler(message: dict[str, Any], ctx: Context) -> None:
    assert ctx.message is not None  # always set for queue deliveries
    channel = "email" if ctx.message.topic == "email.send" else "sms"
    # Send with your email / SMS provider here.
    await ctx.state.set("outbox", ctx.message.id, {"channel": channel, **message})
    ctx.logger.info(f"{channel} delivered", messageId=ctx.message.id)
