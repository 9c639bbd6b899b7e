"""DELETE /pets/:id: a soft delete. The pet is marked `deleted` with a `purgeAt` time; the
DeletionReaper removes it for good once that time has passed. Deleting twice keeps the
first `purgeAt`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from motet import Context, Request, http
from steps.pet_store.pets import PETS, PURGE_AFTER_DAYS

config = {
    "name": "DeletePet",
    "description": "Soft-delete a pet; it is purged later",
    "triggers": [http("DELETE", "/pets/:id")],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    pet_id = request.path_params["id"]
    pet = await ctx.state.get(PETS, pet_id)
    if pet is None:
        return {"status": 404, "body": {"error": f"pet {pet_id} not found"}}
    if not pet.get("deleted"):
        now = ctx.now()
        pet = await ctx.state.update(
            PETS,
            pet_id,
            {
                "deleted": True,
                "deletedAt": now.isoformat(),
                "purgeAt": (now + timedelta(days=PURGE_AFTER_DAYS)).isoformat(),
            },
        )
        ctx.logger.info("Pet soft-deleted", petId=pet_id, purgeAt=pet["purgeAt"])
    return {"status": 200, "body": pet}
