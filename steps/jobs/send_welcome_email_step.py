"""A quick task: welcome a registered user, then report `email.sent`.

A plain `def` handler: motet runs it in a worker thread, so a blocking email SDK does not
stall other steps; its `ctx` methods block instead of being awaited.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Registration:
    email: str
    name: str


config = {
    "type": "event",
    "name": "SendWelcomeEmail",
    "subscribes": ["user.registered"],
    "input": Registration,
    "emits": ["email.sent"],
    "flows": ["jobs"],
}


def handler(user: Registration, ctx: Any) -> None:
    # Send with your (blocking) email provider's SDK here.
    ctx.logger.info(
        "Welcome email sent",
        email=user.email,
        subject="Welcome!",
        body=f"Hi {user.name}, welcome to our app!",
    )
    ctx.emit({"topic": "email.sent", "data": {"email": user.email, "type": "welcome"}})
