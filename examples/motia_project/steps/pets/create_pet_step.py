from pydantic import BaseModel, Field


class PetIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    species: str
    age: int = Field(ge=0)


class PetOut(BaseModel):
    id: str
    name: str
    species: str
    age: int


# Motia 0.x form with pydantic schemas as JSON Schema, and the request read as a dict.
config = {
    "type": "api",
    "name": "CreatePet",
    "description": "Adds a pet to the store",
    "method": "POST",
    "path": "/pets",
    "bodySchema": PetIn.model_json_schema(),
    "responseSchema": {201: PetOut.model_json_schema()},
    "emits": ["pet.created"],
    "flows": ["pets"],
}


async def handler(req, context):
    body = req.get("body", {})
    pet_id = f"pet-{body['name'].lower()}"
    pet = {"id": pet_id, **body}
    await context.state.set("pets", pet_id, pet)
    await context.emit({"topic": "pet.created", "data": pet})
    context.logger.info("Pet created", {"petId": pet_id})
    return {"status": 201, "body": pet}
