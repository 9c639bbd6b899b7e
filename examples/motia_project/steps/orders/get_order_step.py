config = {
    "name": "GetOrder",
    "description": "An order's status and payment attempts",
    "triggers": [{"type": "http", "method": "GET", "path": "/orders/:id"}],
    "enqueues": [],
    "flows": ["orders"],
}


async def handler(request, ctx):
    order = await ctx.state.get("orders", request.path_params["id"])
    if order is None:
        return {"status": 404, "body": {"error": "no such order"}}
    return {"status": 200, "body": order}
