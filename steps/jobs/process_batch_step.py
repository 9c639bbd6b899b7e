"""Process a batch in chunks of 10, recording progress in state "batches"."""

from __future__ import annotations

import attrs
import trio

from motet import Context

CHUNK_SIZE = 10


@attrs.frozen
class Batch:
    batchId: str
    items: list[int]


config = {
    "type": "event",
    "name": "ProcessBatch",
    "subscribes": ["batch.process"],
    "input": Batch,
    "emits": ["batch.completed"],
    "flows": ["jobs"],
}


async def process_item(item: int) -> int:
    await trio.sleep(0.01)  # stands for real work
    return item * item


async def process_chunk(chunk: list[int]) -> list[int]:
    """The chunk's items in parallel, results in the items' order."""
    results = [0] * len(chunk)

    async def run(i: int, item: int) -> None:
        results[i] = await process_item(item)

    async with trio.open_nursery() as nursery:
        for i, item in enumerate(chunk):
            nursery.start_soon(run, i, item)
    return results


async def handler(batch: Batch, ctx: Context) -> None:
    results: list[int] = []
    for start in range(0, len(batch.items), CHUNK_SIZE):
        chunk = batch.items[start : start + CHUNK_SIZE]
        results.extend(await process_chunk(chunk))

        progress = round((start + len(chunk)) / len(batch.items) * 100)
        await ctx.state.set("batches", batch.batchId, {"progress": progress})
        ctx.logger.info(f"Batch {batch.batchId}: {progress}% complete")

    await ctx.state.set("batch_results", batch.batchId, results)
    await ctx.emit(
        {"topic": "batch.completed", "data": {"batchId": batch.batchId, "count": len(results)}}
    )
