"""GET /pets: every pet that is not deleted."""

from __future__ import annotations

from typing import Any

from motet import Context, Request, http
from steps.pet_store.pets import active_pets

config = {
    "name": "ListPets",
    "description": "List the pets in the store",
    "triggers": [http("GET", "/pets")],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    pets = await active_pets(ctx)
    return {"status": 200, "body": pets}
