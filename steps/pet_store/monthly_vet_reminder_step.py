"""On the 1st of every month at 10:00 UTC, remind owners of vet checkups, by age and breed."""

from __future__ import annotations

from typing import Any

from motet import Context
from steps.pet_store.pets import active_pets

config = {
    "type": "cron",
    "name": "MonthlyVetReminder",
    "description": "Send monthly veterinary checkup reminders for all pets",
    "cron": "0 10 1 * *",  # the 1st of every month at 10:00
    "emits": [],
    "flows": ["pet-store"],
}


def vet_checkup_needs(age: int, breed: str) -> dict[str, Any]:
    if age >= 7:
        return {
            "message": "Senior pet - enhanced health monitoring recommended",
            "checks": [
                "general exam",
                "blood work",
                "joint assessment",
                "dental check",
                "weight monitoring",
            ],
            "urgency": "high",
            "frequency": "Every 6 months",
        }
    if age <= 1:
        return {
            "message": "Young pet - vaccination and growth monitoring needed",
            "checks": [
                "vaccinations",
                "growth assessment",
                "parasite prevention",
                "nutrition counseling",
            ],
            "urgency": "high",
            "frequency": "Every 3-4 months",
        }
    if "Cat" in breed:
        return {
            "message": "Adult cat - routine preventive care",
            "checks": ["general exam", "dental check", "parasite prevention", "weight check"],
            "urgency": "medium",
            "frequency": "Annually",
        }
    return {
        "message": "Adult dog - standard wellness checkup",
        "checks": ["general exam", "vaccinations", "heartworm test", "dental assessment"],
        "urgency": "medium",
        "frequency": "Annually",
    }


async def handler(ctx: Context) -> None:
    month = ctx.now().strftime("%B %Y")
    ctx.logger.info(
        "Starting monthly vet checkup reminder job",
        scheduledTime="10:00 AM - 1st of month",
        jobType="monthly-vet-checkup",
        currentMonth=month,
    )
    pets = await active_pets(ctx)
    for pet in pets:
        needs = vet_checkup_needs(pet["age"], pet["breed"])
        ctx.logger.info(
            "Monthly vet checkup reminder sent",
            petId=pet["id"],
            petName=pet["name"],
            petAge=pet["age"],
            petBreed=pet["breed"],
            recipient=f"owner-{pet['id']}@petstore.com",
            reminderType="vet-checkup",
            message=f"Monthly health reminder for {pet['name']}: {needs['message']}",
            recommendedChecks=needs["checks"],
            urgencyLevel=needs["urgency"],
            checkupFrequency=needs["frequency"],
            schedulingAdvice="Book appointment within next 2 weeks",
            month=month,
            timestamp=ctx.now().isoformat(),
        )
    ctx.logger.info(
        "Monthly vet checkup reminder job completed",
        totalPets=len(pets),
        remindersSent=len(pets),
        month=month,
    )
