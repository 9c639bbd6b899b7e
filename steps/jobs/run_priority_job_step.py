"""Run queued jobs one at a time (motet.toml: `job.queued` has concurrency 1 and the
priority strategy), highest priority first."""

from __future__ import annotations

from typing import Literal

import attrs
import trio

from motet import Context


@attrs.frozen
class QueuedJob:
    jobId: str
    name: str
    priority: Literal["high", "normal", "low"]


config = {
    "type": "event",
    "name": "RunPriorityJob",
    "subscribes": ["job.queued"],
    "input": QueuedJob,
    "flows": ["jobs"],
}


async def handler(job: QueuedJob, ctx: Context) -> None:
    await ctx.state.update("jobs", job.jobId, {"status": "processing"})
    ctx.logger.info("Running job", jobId=job.jobId, name=job.name, priority=job.priority)
    await trio.sleep(1)  # stands for the job's work
    await ctx.state.update(
        "jobs", job.jobId, {"status": "completed", "completedAt": ctx.now().isoformat()}
    )
