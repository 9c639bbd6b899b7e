"""When a pet is created, set its next feeding reminder (1.0 form: a queue trigger).

The reminder is stored on the pet (`nextFeedingAt`, `notes`), 24 hours after the pet was
created, so a retried message sets the same time."""

from __future__ import annotations

from datetime import timedelta

from motet import Context, queue
from steps.pet_store.pets import PETS, Pet, parse_time

FEEDING_INTERVAL = timedelta(hours=24)

config = {
    "name": "SetNextFeedingReminder",
    "description": "Set the first feeding reminder of a new pet",
    "triggers": [queue("pet-created", input=Pet)],
    "enqueues": [],
    "flows": ["pet-store"],
}


async def handler(pet: Pet, ctx: Context) -> None:
    ctx.logger.info("Setting next feeding reminder", petId=pet.id)
    if await ctx.state.get(PETS, pet.id) is None:
        # Purged before this message ran: updating would recreate a partial pet.
        ctx.logger.warn("Pet no longer exists; no reminder set", petId=pet.id)
        return
    next_feeding = parse_time(pet.createdAt) + FEEDING_INTERVAL
    await ctx.state.update(
        PETS,
        pet.id,
        {
            "nextFeedingAt": next_feeding.isoformat(),
            "notes": "Welcome! Feed according to the breed's schedule.",
        },
    )
    ctx.logger.info(
        "Next feeding reminder set", petId=pet.id, nextFeedingAt=next_feeding.isoformat()
    )
