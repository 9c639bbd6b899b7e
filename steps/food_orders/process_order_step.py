"""One step, two triggers: a `process-order` message or POST /process-order.

`ctx.trigger.type` says which one ran; `ctx.match` picks the reply per trigger (a queue
message gets none). `process-order` is a fifo queue (motet.toml): messages of one group
(`messageGroupId`, e.g. the customer) run in order, even across retries.
"""

from __future__ import annotations

from typing import Any

from motet import Context, http, queue, step
from steps.food_orders.petstore import FoodOrder, OutOfStock, create_order

step_config = {
    "name": "ProcessOrder",
    "triggers": [
        queue("process-order", input=FoodOrder),
        http("POST", "/process-order", body=FoodOrder),
    ],
    "enqueues": ["notification"],
    "flows": ["pet-store"],
}


async def process(_input: Any, ctx: Context) -> Any:
    order: FoodOrder = ctx.get_data()
    ctx.logger.info(
        "Processing order", triggerType=ctx.trigger.type, petId=order.petId, quantity=order.quantity
    )
    try:
        record = await create_order(ctx, order)
    except OutOfStock as exc:
        if ctx.trigger.type == "http":
            return {"status": 409, "body": {"error": str(exc)}}
        raise  # a queue message is retried later, still ahead of its group
    await ctx.enqueue(
        "notification",
        {
            "email": order.email,
            "templateId": "order-processed",
            "templateData": {"orderId": record["id"], "quantity": record["quantity"]},
        },
    )
    return await ctx.match(
        {
            "http": lambda: {"status": 200, "body": {"success": True, "order": record}},
        }
    )


config, handler = step(step_config, process)
