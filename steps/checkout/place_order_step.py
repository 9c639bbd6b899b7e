"""POST /checkout: record the order and start the workflow with `order.placed`."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from motet import Context, Request
from steps.checkout.orders import ORDERS, LineItem


@attrs.frozen
class Checkout:
    email: str
    items: list[LineItem] = attrs.field(validator=attrs.validators.min_len(1))
    cardToken: str


config = {
    "type": "api",
    "name": "PlaceOrder",
    "method": "POST",
    "path": "/checkout",
    "bodySchema": Checkout,
    "emits": ["order.placed"],
    "flows": ["checkout"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    order_id = str(uuid.uuid4())
    order = await ctx.state.set(
        ORDERS,
        order_id,
        {
            "orderId": order_id,
            **attrs.asdict(request.body),
            "status": "placed",
            "placedAt": ctx.now().isoformat(),
        },
    )
    await ctx.emit("order.placed", {"orderId": order_id})
    return {"status": 202, "body": {"orderId": order["orderId"], "status": "placed"}}
