"""Runs every minute and enqueues `periodic-job-handled`."""

from __future__ import annotations

from typing import Any

from motet import Context

config = {
    "name": "HandlePeriodicJob",
    "description": "Runs every minute",
    "triggers": [{"type": "cron", "expression": "* * * * *"}],  # every minute
    "enqueues": ["periodic-job-handled"],
    "flows": ["scheduled"],
}


async def handler(_input: Any, ctx: Context) -> None:
    ctx.logger.info("Periodic job executed")
    await ctx.enqueue(
        {
            "topic": "periodic-job-handled",
            "data": {"message": "Periodic job executed", "timestamp": ctx.now().isoformat()},
        }
    )
