"""Send a templated notification; the log shows the email masked (`te**@example.com`)."""

from __future__ import annotations

import re
from typing import Any

import attrs

from motet import Context, queue


@attrs.frozen
class NotificationInput:
    templateId: str
    email: str
    templateData: dict[str, Any]


config = {
    "name": "Notification",
    "description": "Sends notifications to users",
    "triggers": [queue("notification", input=NotificationInput)],
    "enqueues": [],
    "flows": ["pet-store"],
}


def mask_email(email: str) -> str:
    """Keep the first two characters of the local part, mask the rest of it."""
    return re.sub(r"(?<=.{2}).(?=.*@)", "*", email)


async def handler(notification: NotificationInput, ctx: Context) -> None:
    ctx.logger.info(
        "Sending notification",
        email=mask_email(notification.email),
        templateId=notification.templateId,
    )
    # Send the email with your provider here, with notification.templateData.
