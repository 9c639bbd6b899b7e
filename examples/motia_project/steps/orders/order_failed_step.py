# Subscribes to the dead-letter topic named in iii-config.yaml: what a payment that never
# went through becomes.
config = {
    "type": "event",
    "name": "OrderFailed",
    "description": "Marks an order whose payment failed for good",
    "subscribes": ["order.failed"],
    "emits": [],
    "flows": ["orders"],
}


async def handler(input, context):
    failed = input["data"]
    order = await context.state.get("orders", failed["id"])
    await context.state.set(
        "orders",
        failed["id"],
        {
            **order,
            "status": "failed",
            "error": input["error"],
            "deadLetterAttempts": input["attempts"],
        },
    )
    context.logger.error("Order failed", {"orderId": failed["id"], "error": input["error"]})
