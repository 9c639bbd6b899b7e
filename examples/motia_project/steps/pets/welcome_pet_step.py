from pydantic import BaseModel


class PetCreated(BaseModel):
    id: str
    name: str
    species: str
    age: int


# Motia 1.0 form: a queue trigger with a pydantic input schema, and config keys motet does
# not use (said once at start).
config = {
    "name": "WelcomePet",
    "description": "Prepares the welcome pack of a new pet",
    "triggers": [
        {"type": "queue", "topic": "pet.created", "input": PetCreated.model_json_schema()}
    ],
    "enqueues": [],
    "flows": ["pets"],
    "includeFiles": ["welcome.txt"],
    "infrastructure": {"handler": {"timeout": 10}},
}


async def handler(input, ctx):
    await ctx.state.set("welcome", input["id"], {"for": input["name"], "pack": "sent"})
    ctx.logger.info("Welcome pack sent", {"petId": input["id"]})
