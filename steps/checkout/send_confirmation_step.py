"""Step 4: tell the customer, by email and by SMS."""

from __future__ import annotations

import attrs

from motet import Context
from steps.checkout.orders import ORDERS


@attrs.frozen
class Confirmed:
    orderId: str
    paymentId: str


config = {
    "type": "event",
    "name": "SendConfirmation",
    "subscribes": ["order.confirmed"],
    "input": Confirmed,
    "emits": ["email.send", "sms.send"],
    "flows": ["checkout"],
}


async def handler(confirmed: Confirmed, ctx: Context) -> None:
    order = await ctx.state.get(ORDERS, confirmed.orderId)
    text = f"Order {confirmed.orderId} is confirmed ({order['amount'] / 100:.2f} paid)."
    await ctx.emit("email.send", {"to": order["email"], "subject": "Your order", "body": text})
    await ctx.emit("sms.send", {"orderId": confirmed.orderId, "body": text})
