"""Process a food order in the background, then enqueue its notification."""

from __future__ import annotations

from motet import Context, queue
from steps.food_orders.petstore import FoodOrder, create_order

config = {
    "name": "ProcessFoodOrder",
    "description": "Process food orders in the background",
    "triggers": [queue("process-food-order", input=FoodOrder)],
    "enqueues": ["notification"],
    "flows": ["pet-store"],
}


async def handler(order: FoodOrder, ctx: Context) -> None:
    ctx.logger.info("Processing food order", petId=order.petId, quantity=order.quantity)
    record = await create_order(ctx, order)  # OutOfStock -> the queue retries later
    await ctx.enqueue(
        {
            "topic": "notification",
            "data": {
                "email": order.email,
                "templateId": "new-order",
                "templateData": {
                    "orderId": record["id"],
                    "quantity": record["quantity"],
                    "status": record["status"],
                },
            },
        }
    )
