"""The pet store "service" the order steps call, kept in motet state so the example runs
without an external API: listed pets in "catalog", orders in "orders", pet food stock in
"inventory" (key "pet-food", `{"units": n}`)."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from motet import Context


@attrs.frozen
class FoodOrder:
    """What `process-food-order` and `process-order` carry."""

    email: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))
    petId: str


class OutOfStock(Exception):
    """Not enough pet food right now; a queue retry may find the shelf restocked."""


async def create_pet(ctx: Context, name: str, photo_url: str) -> dict[str, Any]:
    pet = {"id": str(uuid.uuid4()), "name": name, "photoUrl": photo_url, "status": "available"}
    await ctx.state.set("catalog", pet["id"], pet)
    return pet


async def create_order(ctx: Context, order: FoodOrder) -> dict[str, Any]:
    """Take the food from stock and record the order."""
    await take_from_stock(ctx, "pet-food", order.quantity)
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "email": order.email,
        "quantity": order.quantity,
        "petId": order.petId,
        "shipDate": ctx.now().isoformat(),
        "status": "placed",
    }
    await ctx.state.set("orders", record["id"], record)
    return record


async def take_from_stock(ctx: Context, sku: str, quantity: int) -> None:
    """Raise OutOfStock unless `quantity` units could be taken.

    The check avoids touching the stock when it is clearly short; the decrement is atomic,
    and one that went below zero (another order won the race) is undone, so concurrent
    orders never oversell."""
    stock = await ctx.state.get("inventory", sku)
    units = 0 if stock is None else stock["units"]
    if units < quantity:
        raise OutOfStock(f"{quantity} units of {sku} ordered, {units} in stock")
    after = await ctx.state.update(
        "inventory", sku, [{"op": "decrement", "path": "units", "value": quantity}]
    )
    if after["units"] < 0:
        await ctx.state.update(
            "inventory", sku, [{"op": "increment", "path": "units", "value": quantity}]
        )
        raise OutOfStock(f"{quantity} units of {sku} ordered; another order took them first")
