"""Process an uploaded file in the background; a raised error is retried automatically."""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from motet import Context


@attrs.frozen
class UploadedFile:
    fileId: str
    filename: str


config = {
    "type": "event",
    "name": "ProcessFile",
    "subscribes": ["file.uploaded"],  # listens for the event
    "input": UploadedFile,
    "emits": ["file.processed", "notification.send"],
    "flows": ["jobs"],
}


def process_file(file: UploadedFile) -> dict[str, Any]:
    # Stands for the heavy work (thumbnails, parsing, virus scan, ...).
    return {
        "filename": file.filename,
        "extension": file.filename.rpartition(".")[2].lower() if "." in file.filename else "",
        "checksum": hashlib.sha256(file.filename.encode()).hexdigest()[:16],
    }


async def handler(file: UploadedFile, ctx: Context) -> None:
    ctx.logger.info(f"Processing file: {file.filename}", fileId=file.fileId)
    result = process_file(file)
    await ctx.state.set("processed_files", file.fileId, result)
    await ctx.emit({"topic": "file.processed", "data": {"fileId": file.fileId, "result": result}})
