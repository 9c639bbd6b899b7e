"""A long job that reports its progress: in state "jobs" (read by GET /jobs/:jobId) and as
`video.progress` messages, every 10 %."""

from __future__ import annotations

import attrs
import trio

from motet import Context

CHUNK_SECONDS = 1.0  # stands for the time one tenth of the video takes


@attrs.frozen
class Video:
    videoId: str
    filename: str


config = {
    "type": "event",
    "name": "VideoProcessing",
    "subscribes": ["video.uploaded"],
    "input": Video,
    "emits": ["video.progress", "video.completed"],
    "flows": ["jobs"],
}


async def process_video_chunk(video: Video, progress: int) -> None:
    await trio.sleep(CHUNK_SECONDS)  # virtual time in tests


async def handler(video: Video, ctx: Context) -> None:
    await ctx.state.set("jobs", video.videoId, {"status": "processing", "progress": 0})
    for progress in range(0, 101, 10):
        await process_video_chunk(video, progress)
        await ctx.state.set("jobs", video.videoId, {"status": "processing", "progress": progress})
        await ctx.emit("video.progress", {"videoId": video.videoId, "progress": progress})
    await ctx.state.set("jobs", video.videoId, {"status": "completed", "progress": 100})
    ctx.logger.info("Video processed", videoId=video.videoId, filename=video.filename)
    await ctx.emit("video.completed", {"videoId": video.videoId})
