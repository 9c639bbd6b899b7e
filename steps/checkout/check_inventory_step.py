"""Step 2: reserve every line's stock, then ask for payment; or cancel the order.

If any line is short, what was reserved so far is put back (see `reserve`).
"""

from __future__ import annotations

from typing import Any

from motet import Context
from steps.checkout.orders import ORDERS, OrderRef, release, reserve, set_status

config = {
    "type": "event",
    "name": "CheckInventory",
    "subscribes": ["inventory.check"],
    "input": OrderRef,
    "emits": ["payment.process", "order.cancelled"],
    "flows": ["checkout"],
}


async def handler(ref: OrderRef, ctx: Context) -> None:
    order = await ctx.state.get(ORDERS, ref.orderId)
    amount = 0
    reserved: list[dict[str, Any]] = []
    for item in order["items"]:
        stock = await reserve(ctx, item["sku"], item["quantity"])
        if stock is None:
            for done in reserved:
                await release(ctx, done["sku"], done["quantity"])
            reason = f"not enough stock of {item['sku']}"
            await set_status(ctx, ref.orderId, "cancelled", reason=reason)
            await ctx.emit("order.cancelled", {"orderId": ref.orderId, "reason": reason})
            return
        reserved.append(item)
        amount += stock["price"] * item["quantity"]
    await set_status(ctx, ref.orderId, "reserved", amount=amount)
    await ctx.emit("payment.process", {"orderId": ref.orderId, "amount": amount})
