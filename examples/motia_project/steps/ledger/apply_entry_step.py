# A fifo queue (iii-config.yaml): an entry that fails is retried before any later entry of
# its account runs.
config = {
    "name": "ApplyLedgerEntry",
    "description": "Applies an entry to its account's balance",
    "triggers": [{"type": "queue", "topic": "ledger.entry"}],
    "enqueues": [],
    "flows": ["ledger"],
}


async def handler(entry, ctx):
    account = await ctx.state.get("accounts", entry["account"]) or {"entries": [], "failed": []}
    if entry.get("failOnce") and entry["seq"] not in account["failed"]:
        account["failed"].append(entry["seq"])
        await ctx.state.set("accounts", entry["account"], account)
        raise RuntimeError(f"ledger busy, entry {entry['seq']} will be retried")
    account["entries"].append(entry["seq"])
    await ctx.state.set("accounts", entry["account"], account)
