"""GET /pets/:id: one pet, including a soft-deleted one (it shows `deleted` and `purgeAt`)."""

from __future__ import annotations

from typing import Any

from motet import Context, Request, http
from steps.pet_store.pets import PETS

config = {
    "name": "GetPet",
    "description": "Get one pet by id",
    "triggers": [http("GET", "/pets/:id")],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    pet_id = request.path_params["id"]
    pet = await ctx.state.get(PETS, pet_id)
    if pet is None:
        return {"status": 404, "body": {"error": f"pet {pet_id} not found"}}
    return {"status": 200, "body": pet}
