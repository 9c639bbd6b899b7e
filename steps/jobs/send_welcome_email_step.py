"""A quick task: welcome a registered user, then report `email.sent`."""

from __future__ import annotations

import attrs

from motet import Context


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


async def handler(user: Registration, ctx: Context) -> None:
    # Send with your email provider here.
    ctx.logger.info("Welcome email sent", email=user.email, subject="Welcome!",
                    body=f"Hi {user.name}, welcome to our app!")
    await ctx.emit({"topic": "email.sent", "data": {"email": user.email, "type": "welcome"}})
