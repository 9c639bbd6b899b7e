"""Seed 004's video job, with its progress on a stream instead of hand-written state records
and progress messages: every tenth processed updates the item clients follow live."""

from __future__ import annotations

import attrs
import trio

from motet import Context, queue


@attrs.frozen
class Video:
    videoId: str
    filename: str
    chunkSeconds: float = 0.5


config = {
    "name": "ProcessVideo",
    "triggers": [queue("video.uploaded", input=Video)],
}


async def handler(video: Video, ctx: Context) -> None:
    progress = ctx.streams.videoProgress
    for done in range(0, 101, 10):
        await trio.sleep(video.chunkSeconds)  # processing one tenth (virtual time in tests)
        await progress.set(video.videoId, "job", {"status": "processing", "progress": done})
    await progress.set(video.videoId, "job", {"status": "completed", "progress": 100})
    ctx.logger.info("video processed", videoId=video.videoId, filename=video.filename)
