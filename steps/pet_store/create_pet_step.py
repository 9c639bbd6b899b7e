"""POST /pets: store a new pet and emit `pet-created` for the background jobs.

Written in Motia's 0.x config form (`type: "api"`, `bodySchema`, `emits`).
"""

from __future__ import annotations

import uuid
from typing import Any

from motet import Context, Request
from steps.pet_store.pets import PETS, NewPet, Pet

config = {
    "type": "api",
    "name": "CreatePet",
    "description": "Create a new pet in the store",
    "method": "POST",
    "path": "/pets",
    "bodySchema": NewPet,
    "responseSchema": {200: Pet},
    "emits": ["pet-created"],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    body: NewPet = request.body
    ctx.logger.info("Creating new pet", name=body.name, breed=body.breed)

    pet = Pet(
        id=str(uuid.uuid4()),
        name=body.name,
        breed=body.breed,
        age=body.age,
        createdAt=ctx.now().isoformat(),
    )
    await ctx.state.set(PETS, pet.id, pet)

    # The response does not wait for the background jobs: they run from this message.
    await ctx.emit({"topic": "pet-created", "data": pet})

    return {"status": 200, "body": pet}
