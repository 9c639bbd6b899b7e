"""Step 1 of the workflow: accept the order and ask for an inventory check."""

from __future__ import annotations

from motet import Context
from steps.checkout.orders import OrderRef, set_status

config = {
    "type": "event",
    "name": "ReceiveOrder",
    "subscribes": ["order.placed"],
    "input": OrderRef,
    "emits": ["inventory.check"],
    "flows": ["checkout"],
}


async def handler(ref: OrderRef, ctx: Context) -> None:
    await set_status(ctx, ref.orderId, "received")
    await ctx.emit("inventory.check", {"orderId": ref.orderId})
