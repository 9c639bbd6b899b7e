"""POST /upload: answer 202 Accepted at once; `file.uploaded` starts the processing."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from motet import Context, Request


@attrs.frozen
class Upload:
    filename: str = attrs.field(validator=attrs.validators.min_len(1))


config = {
    "type": "api",
    "name": "UploadFile",
    "method": "POST",
    "path": "/upload",
    "bodySchema": Upload,
    "emits": ["file.uploaded"],  # this triggers the background job
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    file_id = str(uuid.uuid4())
    await ctx.emit(
        {"topic": "file.uploaded", "data": {"fileId": file_id, "filename": request.body.filename}}
    )
    return {"status": 202, "body": {"fileId": file_id, "status": "processing"}}
