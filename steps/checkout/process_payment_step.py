"""Step 3: charge the card. A declined card is a business outcome (`payment.failed`), not
an error: retrying would not help."""

from __future__ import annotations

import uuid

import attrs

from motet import Context
from steps.checkout.orders import ORDERS, set_status


@attrs.frozen
class Payment:
    orderId: str
    amount: int  # cents


config = {
    "type": "event",
    "name": "ProcessPayment",
    "subscribes": ["payment.process"],
    "input": Payment,
    "emits": ["order.confirmed", "payment.failed"],
    "flows": ["checkout"],
}


def charge(card_token: str, amount: int) -> str | None:
    """Stands for the payment provider: a payment id, or None when declined."""
    if card_token.startswith("tok_declined"):
        return None
    return f"pay_{uuid.uuid4().hex[:12]}"


async def handler(payment: Payment, ctx: Context) -> None:
    order = await ctx.state.get(ORDERS, payment.orderId)
    payment_id = charge(order["cardToken"], payment.amount)
    if payment_id is None:
        await set_status(ctx, payment.orderId, "payment_failed", reason="card declined")
        await ctx.emit("payment.failed", {"orderId": payment.orderId, "reason": "card declined"})
        return
    await set_status(ctx, payment.orderId, "confirmed", paymentId=payment_id)
    await ctx.emit("order.confirmed", {"orderId": payment.orderId, "paymentId": payment_id})
