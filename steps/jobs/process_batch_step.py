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


async def handler(batch: Batch, ctx: Context) -> None:
    results: list[int] = []
    for start in range(0, len(batch.items), CHUNK_SIZE):
        chunk = batch.items[start:start + CHUNK_SIZE]
        chunk_results = [0] * len(chunk)

        async def run(i: int, item: int, out: list[int] = chunk_results) -> None:
            out[i] = await process_item(item)

        async with trio.open_nursery() as nursery:  # the chunk's items in parallel
            for i, item in enumerate(chunk):
                nursery.start_soon(run, i, item)
        results.extend(chunk_results)

        progress = round((start + len(chunk)) / len(batch.items) * 100)
        await ctx.state.set("batches", batch.batchId, {"progress": progress})
        ctx.logger.info(f"Batch {batch.batchId}: {progress}% complete")

    await ctx.state.set("batch_results", batch.batchId, results)
    await ctx.emit({"topic": "batch.completed",
                    "data": {"batchId": batch.batchId, "count": len(results)}})
