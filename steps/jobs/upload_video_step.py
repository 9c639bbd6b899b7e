"""POST /videos: register a video job (status "queued") and start its processing."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from motet import Context, Request


@attrs.frozen
class VideoUpload:
    filename: str = attrs.field(validator=attrs.validators.min_len(1))


config = {
    "type": "api",
    "name": "UploadVideo",
    "method": "POST",
    "path": "/videos",
    "bodySchema": VideoUpload,
    "emits": ["video.uploaded"],
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    video_id = str(uuid.uuid4())
    await ctx.state.set("jobs", video_id, {"status": "queued", "progress": 0})
    await ctx.emit("video.uploaded", {"videoId": video_id, "filename": request.body.filename})
    return {
        "status": 202,
        "body": {"videoId": video_id, "status": "queued", "statusUrl": f"/jobs/{video_id}"},
    }
