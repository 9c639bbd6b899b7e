"""When payment fails, put the order's reserved stock back."""

from __future__ import annotations

import attrs

from motet import Context
from steps.checkout.orders import ORDERS, release


@attrs.frozen
class PaymentFailed:
    orderId: str
    reason: str


config = {
    "type": "event",
    "name": "ReleaseInventory",
    "subscribes": ["payment.failed"],
    "input": PaymentFailed,
    "flows": ["checkout"],
}


async def handler(failed: PaymentFailed, ctx: Context) -> None:
    order = await ctx.state.get(ORDERS, failed.orderId)
    for item in order["items"]:
        await release(ctx, item["sku"], item["quantity"])
    ctx.logger.info("Reserved stock released", orderId=failed.orderId, reason=failed.reason)
