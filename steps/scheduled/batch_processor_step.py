"""Every 6 hours, enqueue one `process-item` message per item in state "pending-items"."""

from __future__ import annotations

from typing import Any

from motet import Context

config = {
    "name": "BatchProcessor",
    "description": "Enqueue pending items every 6 hours",
    "triggers": [{"type": "cron", "expression": "0 */6 * * *"}],  # 00:00, 06:00, 12:00, 18:00
    "enqueues": ["process-item"],
    "flows": ["scheduled"],
}


async def handler(_input: Any, ctx: Context) -> None:
    ctx.logger.info("Starting batch processing")
    pending = await ctx.state.list("pending-items")
    ctx.logger.info(f"Found {len(pending)} pending items")
    for item in pending:
        await ctx.enqueue({"topic": "process-item", "data": item})
    ctx.logger.info("Batch enqueued successfully", count=len(pending))
