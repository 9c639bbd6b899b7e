import uuid

# Motia 1.0 form: a list of triggers; the request's fields as attributes.
config = {
    "name": "CreateOrder",
    "description": "Takes an order and hands the payment to a background job",
    "triggers": [{"type": "http", "method": "POST", "path": "/orders"}],
    "enqueues": ["order.placed"],
    "flows": ["orders"],
}


async def handler(request, ctx):
    body = request.body or {}
    order_id = str(uuid.uuid4())
    order = {
        "id": order_id,
        "item": body.get("item", "nothing"),
        "failTimes": int(body.get("failTimes", 0)),
    }
    await ctx.state.set("orders", order_id, {**order, "status": "placed", "attempts": []})
    await ctx.enqueue({"topic": "order.placed", "data": order})
    ctx.logger.info("Order placed", {"orderId": order_id})
    return {"status": 201, "body": {"orderId": order_id}}
