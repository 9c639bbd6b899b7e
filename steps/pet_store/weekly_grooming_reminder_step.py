"""Every Monday at 09:00 UTC, remind owners to groom their pets, by breed."""

from __future__ import annotations

from typing import Any

from motet import Context
from steps.pet_store.pets import active_pets

config = {
    "type": "cron",
    "name": "WeeklyGroomingReminder",
    "description": "Send weekly grooming reminders for all pets",
    "cron": "0 9 * * 1",  # every Monday at 09:00
    "emits": [],
    "flows": ["pet-store"],
}


def grooming_needs(breed: str) -> dict[str, Any]:
    if "Poodle" in breed:
        return {
            "message": "Professional grooming recommended - coat requires regular trimming",
            "tasks": ["brushing", "trimming", "nail clipping", "ear cleaning"],
            "frequency": "Every 4-6 weeks",
        }
    if "Cat" in breed:
        return {
            "message": "Basic grooming maintenance needed",
            "tasks": ["brushing", "nail trimming"],
            "frequency": "Every 2 weeks",
        }
    return {
        "message": "Regular grooming helps maintain healthy coat and skin",
        "tasks": ["brushing", "bathing", "nail clipping"],
        "frequency": "Every 6-8 weeks",
    }


async def handler(ctx: Context) -> None:
    ctx.logger.info(
        "Starting weekly grooming reminder job",
        scheduledTime="9:00 AM Monday",
        jobType="weekly-grooming",
    )
    pets = await active_pets(ctx)
    for pet in pets:
        needs = grooming_needs(pet["breed"])
        ctx.logger.info(
            "Weekly grooming reminder sent",
            petId=pet["id"],
            petName=pet["name"],
            petBreed=pet["breed"],
            recipient=f"owner-{pet['id']}@petstore.com",
            reminderType="grooming",
            message=f"This week's grooming reminder for {pet['name']}: {needs['message']}",
            groomingTasks=needs["tasks"],
            recommendedFrequency=needs["frequency"],
            nextAppointment="Schedule within next 7 days",
            timestamp=ctx.now().isoformat(),
        )
    ctx.logger.info(
        "Weekly grooming reminder job completed", totalPets=len(pets), remindersSent=len(pets)
    )
