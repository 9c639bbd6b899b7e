"""POST /videos: accept an upload, answer 202 with where to follow its progress."""

from __future__ import annotations

import uuid

import attrs

from motet import Context, Request, http


@attrs.frozen
class Upload:
    filename: str
    chunkSeconds: float = 0.5  # how long one tenth of the video takes (a demo knob)


config = {
    "name": "UploadVideo",
    "triggers": [http("POST", "/videos", body=Upload)],
    "enqueues": ["video.uploaded"],
}


async def handler(request: Request, ctx: Context) -> dict[str, object]:
    upload: Upload = request.body
    video_id = uuid.uuid4().hex[:12]
    await ctx.streams.videoProgress.set(video_id, "job", {"status": "queued", "progress": 0})
    await ctx.emit(
        "video.uploaded",
        {"videoId": video_id, "filename": upload.filename, "chunkSeconds": upload.chunkSeconds},
    )
    return {
        "status": 202,
        "body": {"videoId": video_id, "stream": f"/_streams/videoProgress/{video_id}"},
    }
