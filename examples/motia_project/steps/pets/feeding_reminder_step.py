# Motia 0.x cron step: every day at 08:00.
config = {
    "type": "cron",
    "name": "DailyFeedingReminder",
    "description": "Reminds owners to feed their pets",
    "cron": "0 8 * * *",
    "emits": [],
    "flows": ["pets"],
}


async def handler(context):
    pets = await context.state.get_group("pets")
    for pet in pets:
        context.logger.info("Feeding reminder sent", {"petId": pet["id"]})
