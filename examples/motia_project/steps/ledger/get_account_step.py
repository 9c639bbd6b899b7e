config = {
    "name": "GetAccount",
    "description": "The entries applied to an account, in the order they were applied",
    "triggers": [{"type": "http", "method": "GET", "path": "/accounts/:account"}],
    "enqueues": [],
    "flows": ["ledger"],
}


async def handler(request, ctx):
    account = await ctx.state.get("accounts", request.path_params["account"])
    return {"status": 200, "body": account or {"entries": [], "failed": []}}
