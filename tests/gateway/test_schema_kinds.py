"""Schemas written the Motia way, through the real runtime and its in-process HTTP client:
a JSON Schema dict (`Model.model_json_schema()`) and a pydantic model class as the body,
the query and a queue's input. A bad payload gets the same 400 problem+json (per-field
`errors[].path`) or the same dead letter as with an attrs schema."""

from __future__ import annotations

import datetime
import enum
from typing import Any, Literal

import attrs
import pytest
from openapi_spec_validator import validate as validate_openapi
from pydantic import BaseModel, Field, computed_field, field_validator

from motet.gateway import GatewayOptions, openapi_document
from motet.gateway._routes import collect_routes
from motet.steps import load_step
from motet.testing import open_test_runtime


class Kind(enum.StrEnum):
    DOG = "dog"
    CAT = "cat"


class Tag(BaseModel):
    name: str = Field(min_length=1)


class PetIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    kind: Kind
    age: int = Field(ge=0)
    tags: list[Tag] = []
    owner: Tag | None = None
    born: datetime.date | None = None
    size: Literal["s", "m", "l"] = "m"


class Search(BaseModel):
    q: str
    limit: int = 10
    tag: list[str] = []
    exact: bool = False


class Strict(BaseModel):
    code: str

    @field_validator("code")
    @classmethod
    def _upper(cls, value: str) -> str:
        if value != value.upper():
            raise TypeError("not upper case")  # pydantic does not wrap a TypeError
        return value


@attrs.frozen
class AttrsPet:  # the same body as PetIn, the attrs way, for comparing error shapes
    name: str
    kind: Literal["dog", "cat"]
    age: int


PET_SCHEMA = PetIn.model_json_schema()
GOOD = {"name": "Rex", "kind": "dog", "age": 3, "tags": [{"name": "good"}], "born": "2020-02-29"}


def http_step(name: str, path: str, handler: Any, **trigger: Any) -> Any:
    config = {
        "name": name,
        "triggers": [{"type": "http", "method": "POST", "path": path, **trigger}],
        "enqueues": ["pet.created"],
    }
    return load_step(config, handler)


def queue_step(name: str, topic: str, handler: Any, schema: Any, **options: Any) -> Any:
    trigger = {"type": "queue", "topic": topic, "input": schema, **options}
    return load_step({"name": name, "triggers": [trigger], "enqueues": ["pet.saved"]}, handler)


def paths(body: dict[str, Any]) -> dict[str, str]:
    return {e["path"]: e["detail"] for e in body["errors"]}


# -- JSON Schema dicts -----------------------------------------------------------------------


async def test_json_schema_body_gives_the_handler_the_plain_dict(autojump_clock: Any) -> None:
    seen: list[Any] = []

    async def handler(request: Any, ctx: Any) -> Any:
        seen.append(request.body)
        await ctx.emit("pet.created", request.body)
        return {"status": 201, "body": {"id": "p1", **request.body}}

    async with open_test_runtime(
        [http_step("create", "/pets", handler, bodySchema=PET_SCHEMA)]
    ) as app:
        response = await app.http.post("/pets", json=GOOD)
        assert response.status == 201, response.text
        assert response.json == {"id": "p1", **GOOD}
        await app.settle()
        assert app.messages("pet.created") == [GOOD]
    assert type(seen[0]) is dict and seen[0] == GOOD  # as it arrived: no defaults filled in


async def test_json_schema_body_errors_name_each_field(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        raise AssertionError("not called for a bad body")

    bad = {
        "name": "",
        "kind": "cow",
        "age": "3",
        "tags": [{"name": "ok"}, {}],
        "owner": {"name": 5},
        "born": "2020-13-01",
    }
    async with open_test_runtime([http_step("create", "/pets", handler, body=PET_SCHEMA)]) as app:
        response = await app.http.post("/pets", json=bad)
        assert response.status == 400
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json
        assert problem["type"] == "urn:motet:problem:invalid-body"
        assert problem["detail"] == "6 problem(s) in the request body"
        assert paths(problem) == {
            "$.body.name": '"" is shorter than 1 character',
            "$.body.kind": '"cow" is not one of "dog" or "cat"',
            "$.body.age": '"3" is not of type "integer"',
            "$.body.tags[1].name": "required field missing",
            "$.body.owner.name": '5 is not of type "string"',  # through anyOf [Tag, null]
            "$.body.born": '"2020-13-01" is not a "date"',
        }
        for error in problem["errors"]:
            assert error["message"] == f"{error['detail']} @ {error['path']}"

        missing = await app.http.post("/pets", json={"name": "Rex"})
        assert paths(missing.json) == {
            "$.body.kind": "required field missing",
            "$.body.age": "required field missing",
        }
        not_object = await app.http.post("/pets", json=[GOOD])
        assert not_object.status == 400
        assert [e["path"] for e in not_object.json["errors"]] == ["$.body"]

        malformed = await app.http.post(
            "/pets", data=b'{"name": "Rex",', headers={"content-type": "application/json"}
        )
        assert malformed.status == 400
        assert malformed.json["type"] == "urn:motet:problem:malformed-json"


async def test_the_same_bad_body_reads_alike_with_an_attrs_schema(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return None

    steps = [
        http_step("by-dict", "/dict", handler, body=PET_SCHEMA),
        http_step("by-attrs", "/attrs", handler, body=AttrsPet),
        http_step("by-model", "/model", handler, body=PetIn),
    ]
    async with open_test_runtime(steps) as app:
        for path in ("/dict", "/attrs", "/model"):
            response = await app.http.post(path, json={"kind": "dog", "age": 2})
            assert response.status == 400
            problem = response.json
            assert problem["type"] == "urn:motet:problem:invalid-body"
            assert problem["errors"] == [
                {
                    "detail": "required field missing",
                    "path": "$.body.name",
                    "message": "required field missing @ $.body.name",
                }
            ], path


async def test_json_schema_query(autojump_clock: Any) -> None:
    seen: list[Any] = []

    async def handler(request: Any, ctx: Any) -> Any:
        seen.append(request.query)
        return {"ok": True}

    step = load_step(
        {
            "name": "search",
            "triggers": [
                {
                    "type": "http",
                    "method": "GET",
                    "path": "/search",
                    "query": Search.model_json_schema(),
                }
            ],
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        ok = await app.http.get("/search", query={"q": "rex", "limit": "5", "tag": "a"})
        assert ok.status == 200, ok.text
        bad = await app.http.get("/search", query={"limit": "many", "exact": "maybe"})
        assert bad.status == 400
        assert bad.json["type"] == "urn:motet:problem:invalid-query"
        assert paths(bad.json) == {
            "$.query.q": "required field missing",
            "$.query.limit": '"many" is not of type "integer"',
            "$.query.exact": '"maybe" is not of type "boolean"',
        }
    assert seen == [{"q": "rex", "limit": "5", "tag": "a"}]  # the query as sent


async def test_json_schema_queue_input_valid_and_dead_lettered(autojump_clock: Any) -> None:
    handled: list[Any] = []

    async def handler(message: Any, ctx: Any) -> None:
        handled.append(message)

    step = queue_step("save", "pet.created", handler, PET_SCHEMA, max_retries=3)
    async with open_test_runtime([step]) as app:
        await app.emit("pet.created", GOOD)
        await app.emit("pet.created", {"name": "Rex", "kind": "dog", "age": -1, "tags": [{}]})
        await app.settle()
        [letter] = await app.dead_letters("save")
    assert handled == [GOOD] and type(handled[0]) is dict
    assert letter.attempts == 1  # straight to dead letters, no retries
    assert letter.error == (
        "invalid input: -1 is less than the minimum of 0 @ $.age; "
        "required field missing @ $.tags[0].name"
    )


# -- pydantic model classes ------------------------------------------------------------------


async def test_pydantic_body_gives_the_handler_the_model(autojump_clock: Any) -> None:
    seen: list[Any] = []

    async def handler(request: Any, ctx: Any) -> Any:
        pet = request.body
        seen.append(pet)
        await ctx.emit("pet.created", pet)  # an instance goes out as model_dump(mode="json")
        await ctx.state.set("pets", pet.name, pet)
        return {"status": 201, "body": pet}

    async with open_test_runtime([http_step("create", "/pets", handler, body=PetIn)]) as app:
        response = await app.http.post("/pets", json=GOOD)
        assert response.status == 201, response.text
        expected = {**GOOD, "owner": None, "size": "m"}
        assert response.json == expected
        await app.settle()
        assert app.messages("pet.created") == [expected]
        assert await app.state.get("pets", "Rex") == expected
    assert isinstance(seen[0], PetIn) and seen[0].kind is Kind.DOG
    assert seen[0].born == datetime.date(2020, 2, 29)


async def test_pydantic_body_errors_name_each_field(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        raise AssertionError("not called for a bad body")

    steps = [
        http_step("create", "/pets", handler, body=PetIn),
        http_step("strict", "/strict", handler, body=Strict),
    ]
    async with open_test_runtime(steps) as app:
        bad = {"name": "", "kind": "cow", "age": "x", "tags": [{"name": "ok"}, {}]}
        response = await app.http.post("/pets", json=bad)
        assert response.status == 400
        problem = response.json
        assert problem["type"] == "urn:motet:problem:invalid-body"
        assert set(paths(problem)) == {
            "$.body.name",
            "$.body.kind",
            "$.body.age",
            "$.body.tags[1].name",
        }
        assert paths(problem)["$.body.tags[1].name"] == "required field missing"
        assert paths(problem)["$.body.kind"] == "Input should be 'dog' or 'cat'"

        odd = await app.http.post("/strict", json={"code": "abc"})
        assert odd.status == 400
        assert paths(odd.json) == {"$.body": "TypeError: not upper case"}


async def test_pydantic_query(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return request.query

    step = load_step(
        {
            "name": "search",
            "triggers": [{"type": "http", "method": "GET", "path": "/s", "query": Search}],
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        ok = await app.http.get("/s", query={"q": "rex", "limit": "5", "tag": "a"})
        assert ok.status == 200, ok.text
        bad = await app.http.get("/s", query={"q": "rex", "limit": "many"})
        assert bad.status == 400
        assert set(paths(bad.json)) == {"$.query.limit"}


async def test_pydantic_queue_input_and_emit_round_trip(autojump_clock: Any) -> None:
    received: list[Any] = []

    async def save(pet: Any, ctx: Any) -> None:
        received.append(pet)
        await ctx.emit("pet.saved", {"pet": pet, "tags": pet.tags})  # nested instances too

    steps = [queue_step("save", "pet.created", save, PetIn, max_retries=3)]
    async with open_test_runtime(steps) as app:
        await app.emit("pet.created", PetIn.model_validate(GOOD))  # the test emits a model
        await app.emit("pet.created", {"name": "Rex", "kind": "emu", "age": 1})
        await app.settle()
        [saved] = app.messages("pet.saved")
        [letter] = await app.dead_letters("save")
    assert [type(p) for p in received] == [PetIn]
    assert saved == {
        "pet": {**GOOD, "owner": None, "size": "m"},
        "tags": [{"name": "good"}],
    }
    assert letter.attempts == 1
    assert letter.error.startswith("invalid input: Input should be")
    assert letter.error.endswith("@ $.kind")


@pytest.mark.parametrize("schema", [PET_SCHEMA, PetIn], ids=["json-schema", "pydantic"])
async def test_response_schemas_are_accepted(autojump_clock: Any, schema: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return {"status": 200, "body": GOOD}

    step = http_step("get", "/pet", handler, responseSchema={200: schema})
    async with open_test_runtime([step]) as app:
        response = await app.http.post("/pet")
        assert response.status == 200 and response.json == GOOD


# -- OpenAPI ---------------------------------------------------------------------------------


def _other_tag() -> type[BaseModel]:
    class Tag(BaseModel):  # a different `Tag` from another module, say
        label: str

    return Tag


class Listing(BaseModel):
    tags: list[_other_tag()]  # type: ignore[valid-type]


class Priced(BaseModel):
    net: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def gross(self) -> float:
        return self.net * 1.2


def test_openapi_documents_a_model_response_as_it_is_dumped() -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return {"status": 200, "body": Priced(net=10)}

    step = http_step("price", "/price", handler, body=Priced, responseSchema={200: Priced})
    doc = openapi_document(collect_routes([step]), GatewayOptions())
    validate_openapi(doc)
    operation = doc["paths"]["/price"]["post"]
    accepted = operation["requestBody"]["content"]["application/json"]["schema"]
    answered = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(accepted["properties"]) == {"net"}
    assert set(answered["properties"]) == {"net", "gross"}


def test_openapi_uses_json_schema_dicts_and_models_as_written() -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        return None

    recursive = {
        "title": "Tree node",
        "type": "object",
        "properties": {
            "children": {"type": "array", "items": {"$ref": "#"}},
            "tag": {"$ref": "#/$defs/Tag"},
        },
        "$defs": {"Tag": PET_SCHEMA["$defs"]["Tag"]},
    }
    steps = [
        http_step("by-dict", "/dict", handler, bodySchema=PET_SCHEMA, responseSchema={201: PetIn}),
        http_step("by-model", "/model", handler, body=PetIn),
        http_step("listing", "/listing", handler, body=Listing.model_json_schema()),
        http_step("tree", "/tree", handler, body=recursive),
        load_step(
            {
                "name": "search",
                "triggers": [{"type": "http", "method": "GET", "path": "/s", "query": Search}],
            },
            handler,
        ),
    ]
    doc = openapi_document(collect_routes(steps), GatewayOptions())
    validate_openapi(doc)
    schemas = doc["components"]["schemas"]

    def body(path: str) -> Any:
        return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    # The dict as written, its $defs moved to components and its refs re-pointed.
    expected = {k: v for k, v in PET_SCHEMA.items() if k != "$defs"}
    expected["properties"] = {
        **PET_SCHEMA["properties"],
        "kind": {"$ref": "#/components/schemas/Kind"},
        "tags": {**PET_SCHEMA["properties"]["tags"], "items": {"$ref": "#/components/schemas/Tag"}},
        "owner": {
            **PET_SCHEMA["properties"]["owner"],
            "anyOf": [{"$ref": "#/components/schemas/Tag"}, {"type": "null"}],
        },
    }
    assert body("/dict") == expected
    assert body("/model") == expected  # model_json_schema(): the same document
    assert schemas["Tag"] == PET_SCHEMA["$defs"]["Tag"]
    # Another, different `Tag` is renamed, and only its own references follow.
    assert body("/listing")["properties"]["tags"]["items"] == {"$ref": "#/components/schemas/Tag2"}
    assert schemas["Tag2"]["properties"] == {"label": {"title": "Label", "type": "string"}}
    # A `$ref` to the root itself: the schema becomes a component so `#` still means it.
    # (its title made a valid component name; its other refs left pointing at components)
    assert body("/tree") == {"$ref": "#/components/schemas/Tree_node"}
    assert schemas["Tree_node"]["properties"] == {
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree_node"}},
        "tag": {"$ref": "#/components/schemas/Tag"},
    }
    created = doc["paths"]["/dict"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"] == expected
    params = {p["name"]: p for p in doc["paths"]["/s"]["get"]["parameters"]}
    assert params["q"]["required"] is True and params["limit"]["required"] is False
    assert params["tag"]["schema"]["type"] == "array"
