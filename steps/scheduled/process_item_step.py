"""Process one pending item, recording the job's outcome in state "jobs".

On failure the job is marked failed and the error re-raised, so the queue retries it; an
item that keeps failing stays in "pending-items" for the next batch. On success it leaves
"pending-items".
"""

from __future__ import annotations

import attrs

from motet import Context, queue


@attrs.frozen
class Item:
    id: str
    value: int


config = {
    "name": "ProcessItem",
    "description": "Process one item of a batch",
    "triggers": [queue("process-item", input=Item, max_retries=2, retry_delay=1000)],
    "enqueues": [],
    "flows": ["scheduled"],
}


def process_data(item: Item) -> int:
    if item.value < 0:
        raise ValueError(f"item {item.id}: negative values cannot be processed ({item.value})")
    return item.value * 2


async def handler(item: Item, ctx: Context) -> None:
    try:
        ctx.logger.info("Processing job", itemId=item.id)
        result = process_data(item)
        await ctx.state.set(
            "jobs",
            item.id,
            {
                "status": "completed",
                "result": result,
                "completedAt": ctx.now().isoformat(),
            },
        )
    except Exception as exc:
        ctx.logger.error("Job processing failed", itemId=item.id, error=str(exc))
        await ctx.state.set(
            "jobs",
            item.id,
            {
                "status": "failed",
                "error": str(exc),
                "failedAt": ctx.now().isoformat(),
            },
        )
        raise  # re-raise to trigger the retry
    await ctx.state.delete("pending-items", item.id)
