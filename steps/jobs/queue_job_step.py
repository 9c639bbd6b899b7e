"""POST /jobs: queue a job with a priority. `job.queued` is a priority queue (motet.toml),
so waiting high-priority jobs run before normal and low ones."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import attrs

from motet import Context, Request

PRIORITIES = {"high": 2, "normal": 1, "low": 0}  # higher runs first


@attrs.frozen
class NewJob:
    name: str
    priority: Literal["high", "normal", "low"] = "normal"


config = {
    "type": "api",
    "name": "QueueJob",
    "method": "POST",
    "path": "/jobs",
    "bodySchema": NewJob,
    "emits": ["job.queued"],
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    job: NewJob = request.body
    job_id = str(uuid.uuid4())
    await ctx.state.set(
        "jobs", job_id, {"status": "queued", "name": job.name, "priority": job.priority}
    )
    await ctx.emit(
        {
            "topic": "job.queued",
            "data": {"jobId": job_id, "name": job.name, "priority": job.priority},
            "priority": PRIORITIES[job.priority],
        }
    )
    return {"status": 202, "body": {"jobId": job_id, "status": "queued"}}
