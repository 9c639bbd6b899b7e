"""Every day at 08:00 UTC, remind the owner of every pet to feed it (0.x `type: "cron"`)."""

from __future__ import annotations

from motet import Context
from steps.pet_store.pets import active_pets

config = {
    "type": "cron",
    "name": "DailyFeedingReminder",
    "description": "Send daily feeding reminders for all pets",
    "cron": "0 8 * * *",  # every day at 08:00
    "emits": [],
    "flows": ["pet-store"],
}


async def handler(ctx: Context) -> None:
    ctx.logger.info(
        "Starting daily feeding reminder job", scheduledTime="8:00 AM", jobType="daily-feeding"
    )
    pets = await active_pets(ctx)
    for pet in pets:
        ctx.logger.info(
            "Daily feeding reminder sent",
            petId=pet["id"],
            petName=pet["name"],
            petBreed=pet["breed"],
            recipient=f"owner-{pet['id']}@petstore.com",
            reminderType="feeding",
            message=f"Time to feed {pet['name']}! Remember to provide fresh water and "
            "age-appropriate food.",
            feedingSchedule="2 meals per day" if "Cat" in pet["breed"] else "3 meals per day",
            timestamp=ctx.now().isoformat(),
        )
    ctx.logger.info(
        "Daily feeding reminder job completed", totalPets=len(pets), remindersSent=len(pets)
    )
