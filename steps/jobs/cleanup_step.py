"""Every day at 02:00 UTC, remove expired sessions and temporary files older than 7 days.

`get_group` returns every value of a namespace, so each value carries its own `id`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from motet import Context

TEMP_FILE_MAX_AGE = timedelta(days=7)

config = {
    "type": "cron",
    "name": "CleanupExpired",
    "cron": "0 2 * * *",  # run at 2 AM daily
    "emits": ["cleanup.completed"],
    "flows": ["jobs"],
}


async def handler(ctx: Context) -> None:
    now = ctx.now()
    cleaned = 0
    for session in await ctx.state.get_group("sessions"):
        if datetime.fromisoformat(session["expiresAt"]) <= now:
            await ctx.state.delete("sessions", session["id"])
            cleaned += 1
    for file in await ctx.state.get_group("temp_files"):
        if now - datetime.fromisoformat(file["createdAt"]) > TEMP_FILE_MAX_AGE:
            # Delete file["path"] from your storage here.
            await ctx.state.delete("temp_files", file["id"])
            cleaned += 1
    ctx.logger.info(f"Cleanup completed: {cleaned} items removed", cleaned=cleaned)
    await ctx.emit(
        {"topic": "cleanup.completed", "data": {"cleaned": cleaned, "timestamp": now.isoformat()}}
    )
