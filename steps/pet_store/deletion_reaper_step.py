"""Every day at 02:00 UTC, permanently remove soft-deleted pets whose `purgeAt` has passed."""

from __future__ import annotations

from typing import Any

from motet import Context, cron
from steps.pet_store.pets import PETS, parse_time

config = {
    "name": "DeletionReaper",
    "description": "Purge soft-deleted pets past their purge date",
    "triggers": [cron("0 2 * * *")],  # daily at 02:00
    "enqueues": [],
    "flows": ["pet-store"],
}


async def handler(_input: Any, ctx: Context) -> None:
    now = ctx.now()
    purged = []
    for pet in await ctx.state.list(PETS):
        if pet.get("deleted") and parse_time(pet["purgeAt"]) <= now:
            await ctx.state.delete(PETS, pet["id"])
            purged.append(pet["id"])
    ctx.logger.info("Deletion reaper finished", purged=len(purged), petIds=purged)
