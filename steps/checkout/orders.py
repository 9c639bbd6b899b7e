"""Shared by the checkout steps: the order schemas and the order record in state."""

from __future__ import annotations

from typing import Any

import attrs

from motet import Context

ORDERS = "checkout-orders"


@attrs.frozen
class LineItem:
    sku: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class OrderRef:
    """Most workflow messages carry only the order id; the order is in state."""

    orderId: str


async def set_status(ctx: Context, order_id: str, status: str, **fields: Any) -> None:
    await ctx.state.update(ORDERS, order_id, {"status": status, **fields})
    ctx.logger.info(f"Order {status}", orderId=order_id, **fields)


async def reserve(ctx: Context, sku: str, quantity: int) -> dict[str, Any] | None:
    """The stock record after taking `quantity`, or None (nothing taken) if short.

    The check avoids touching a stock that is clearly short; the decrement is atomic, and
    one that went below zero (another order won the race) is undone, so two orders racing
    for the last units never both get them."""
    stock = await ctx.state.get("inventory", sku)
    if stock is None or stock["units"] < quantity:
        return None
    after = await ctx.state.update(
        "inventory", sku, [{"op": "decrement", "path": "units", "value": quantity}]
    )
    if after["units"] < 0:
        await release(ctx, sku, quantity)
        return None
    return after


async def release(ctx: Context, sku: str, quantity: int) -> None:
    await ctx.state.update(
        "inventory", sku, [{"op": "increment", "path": "units", "value": quantity}]
    )
