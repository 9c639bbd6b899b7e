"""POST /orders: list a pet and, with a `foodOrder`, enqueue `process-food-order`."""

from __future__ import annotations

from typing import Any

import attrs

from motet import Context, Request
from steps.food_orders.petstore import create_pet


@attrs.frozen
class PetInput:
    name: str
    photoUrl: str


@attrs.frozen
class FoodOrderInput:
    quantity: int


@attrs.frozen
class NewOrder:
    pet: PetInput
    foodOrder: FoodOrderInput | None = None


config = {
    "name": "CreateOrder",
    "description": "List a pet and order food for it",
    "triggers": [{"type": "http", "method": "POST", "path": "/orders", "bodySchema": NewOrder}],
    "enqueues": ["process-food-order"],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    body: NewOrder = request.body
    pet = await create_pet(ctx, body.pet.name, body.pet.photoUrl)
    if body.foodOrder is not None:
        await ctx.enqueue(
            {
                "topic": "process-food-order",
                "data": {
                    "quantity": body.foodOrder.quantity,
                    "email": "test@example.com",
                    "petId": pet["id"],
                },
            }
        )
    return {"status": 200, "body": pet}
