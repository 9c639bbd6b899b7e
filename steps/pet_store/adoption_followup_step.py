"""Welcome the new owner as soon as a pet is created (0.x `type: "event"` form)."""

from __future__ import annotations

from motet import Context
from steps.pet_store.pets import Pet

config = {
    "type": "event",
    "name": "AdoptionFollowUp",
    "description": "Send welcome message when a pet is created",
    "subscribes": ["pet-created"],
    "input": Pet,
    "emits": [],
    "flows": ["pet-store"],
}


async def handler(pet: Pet, ctx: Context) -> None:
    ctx.logger.info(
        "Adoption welcome message sent",
        petId=pet.id,
        petName=pet.name,
        recipient="adopter@petstore.com",
        subject=f"Welcome {pet.name} to our pet family!",
        message=f"Congratulations on adopting {pet.name}, your {pet.age}-year-old "
        f"{pet.breed}! Here are some care tips to get you started...",
        timestamp=ctx.now().isoformat(),
    )
    ctx.logger.info(
        "Welcome care package prepared",
        petId=pet.id,
        items=["food samples", "care guide", "toy", "first vet appointment info"],
        deliveryStatus="scheduled",
    )
