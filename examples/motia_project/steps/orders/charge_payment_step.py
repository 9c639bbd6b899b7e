import time

# Motia 0.x form: an event step. Its queue settings (retries, delay, dead-letter topic) are
# in iii-config.yaml under `order.placed`.
config = {
    "type": "event",
    "name": "ChargePayment",
    "description": "Charges the card; the provider fails the first `failTimes` attempts",
    "subscribes": ["order.placed"],
    "emits": [],
    "flows": ["orders"],
}


async def handler(input, context):
    order = await context.state.get("orders", input["id"])
    attempts = [*order["attempts"], time.time()]
    await context.state.set("orders", input["id"], {**order, "attempts": attempts})
    if len(attempts) <= input["failTimes"]:
        context.logger.warn("Payment provider unavailable", {"attempt": len(attempts)})
        raise RuntimeError(f"payment provider unavailable (attempt {len(attempts)})")
    await context.state.set(
        "orders", input["id"], {**order, "attempts": attempts, "status": "paid"}
    )
