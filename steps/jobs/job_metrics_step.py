"""Every 5 minutes, count the jobs in state "jobs" by status."""

from __future__ import annotations

from collections import Counter

from motet import Context

STATUSES = ("queued", "processing", "completed", "failed")

config = {
    "type": "cron",
    "name": "JobMetrics",
    "cron": "*/5 * * * *",  # every 5 minutes
    "emits": ["metrics.collected"],
    "flows": ["jobs"],
}


async def handler(ctx: Context) -> None:
    counts = Counter(job.get("status") for job in await ctx.state.get_group("jobs"))
    metrics = {status: counts[status] for status in STATUSES}
    await ctx.emit("metrics.collected", {**metrics, "timestamp": ctx.now().isoformat()})
