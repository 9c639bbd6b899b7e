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
    """Take the food from stock and record the order. The decrement is atomic; if it went
    below zero the units are put back, so concurrent orders never oversell."""
    stock = await ctx.state.update("inventory", "pet-food",
                                   [{"op": "decrement", "path": "units", "value": order.quantity}])
    if stock["units"] < 0:
        await ctx.state.update("inventory", "pet-food",
                               [{"op": "increment", "path": "units", "value": order.quantity}])
        raise OutOfStock(f"{order.quantity} units of pet food ordered, "
                         f"{stock['units'] + order.quantity} in stock")
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
