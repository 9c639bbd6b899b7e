config = {
    "name": "PostLedgerEntry",
    "description": "Queues an entry for an account; entries of one account apply in order",
    "triggers": [{"type": "http", "method": "POST", "path": "/accounts/:account/entries"}],
    "enqueues": ["ledger.entry"],
    "flows": ["ledger"],
}


async def handler(request, ctx):
    account = request.path_params["account"]
    entry = {"account": account, **(request.body or {})}
    await ctx.enqueue({"topic": "ledger.entry", "data": entry, "messageGroupId": account})
    return {"status": 202, "body": {"queued": entry}}
