"""Loading schemas written the Motia way: a JSON Schema dict is checked and compiled when the
step loads (a bad one is a StepDefinitionError naming file, step and field), a pydantic model
class is taken as is; neither pydantic nor the validator is imported by `import motet`."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest
from pydantic import BaseModel

from motet import InputValidationError, StepDefinitionError
from motet.steps import http, json_schema, load_step, load_steps, queue
from motet.steps._schema import make_converter, to_json, validate
from motet.steps._schema_dict import JsonSchema, load_json_schema, property_types

MOTIA_STEP = """
from pydantic import BaseModel, Field


class PetIn(BaseModel):
    name: str = Field(min_length=1)
    age: int


class PetOut(BaseModel):
    id: str
    name: str


config = {
    "type": "api",
    "name": "CreatePet",
    "method": "POST",
    "path": "/pets",
    "bodySchema": PetIn.model_json_schema(),
    "responseSchema": {201: PetOut.model_json_schema()},
    "emits": ["pet.created"],
}


async def handler(req, context):
    return {"status": 201, "body": {"id": "1", "name": req.body["name"]}}
"""


def write_step(folder: Path, name: str, source: str) -> Path:
    path = folder / "steps" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def test_a_motia_step_file_with_model_json_schema_loads(tmp_path: Path) -> None:
    write_step(tmp_path, "create_pet_step.py", MOTIA_STEP)
    [step] = load_steps(tmp_path / "steps")
    [trigger] = step.triggers
    assert isinstance(trigger.body, JsonSchema)
    assert trigger.body.document["required"] == ["name", "age"]
    assert isinstance(trigger.response[201], JsonSchema)  # type: ignore[index]
    assert json_schema(trigger.body) == trigger.body.document


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "strng"}, r"not a valid JSON Schema: .* \(at /type\)"),
        ({"properties": {"age": {"minimum": "zero"}}}, r"\(at /properties/age/minimum\)"),
        ({"$ref": "#/$defs/Missing"}, "'/\\$defs/Missing' does not exist"),
        ({"$ref": "https://example.com/pet.json"}, "points outside the schema"),
        ({"type": "object", "default": {1, 2}}, "must be plain JSON"),
        ({"pattern": "("}, "not a valid JSON Schema"),
    ],
    ids=["bad type", "bad keyword value", "dangling ref", "remote ref", "not json", "bad regex"],
)
def test_an_invalid_json_schema_names_file_step_and_field(
    tmp_path: Path, schema: Any, message: str
) -> None:
    source = MOTIA_STEP.replace(
        '"bodySchema": PetIn.model_json_schema(),', f'"bodySchema": {schema!r},'
    )
    path = write_step(tmp_path, "create_pet_step.py", source)
    with pytest.raises(StepDefinitionError, match=message) as info:
        load_steps(tmp_path / "steps")
    assert info.value.file == path
    assert info.value.step == "CreatePet"
    assert info.value.field == "bodySchema"


def test_an_invalid_queue_input_schema_names_its_trigger() -> None:
    config = {
        "name": "save",
        "triggers": [
            {"type": "queue", "topic": "a"},
            {"type": "queue", "topic": "b", "input": {"required": "name"}},
        ],
    }
    with pytest.raises(StepDefinitionError, match="not a valid JSON Schema") as info:
        load_step(config, lambda message, ctx: None)
    assert info.value.field == "triggers[1].input"


def test_a_json_schema_is_a_copy_and_compares_by_content() -> None:
    document: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    trigger = queue("a", input=document)
    document["properties"]["n"]["type"] = "string"  # later changes are not seen
    assert trigger.input.document["properties"]["n"]["type"] == "integer"
    same = queue("a", input={"properties": {"n": {"type": "integer"}}, "type": "object"})
    assert same == trigger and hash(same) == hash(trigger)
    assert http("POST", "/x", body={"type": "object"}) != http("POST", "/x", body={})


def messages(schema: Any, payload: Any, root: str = "$") -> list[str]:
    with pytest.raises(InputValidationError) as info:
        validate(make_converter(), payload, schema, root=root)
    return info.value.messages


def test_json_schema_messages_and_paths() -> None:
    schema = load_json_schema(
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "at": {"type": "string", "format": "date-time"},
                "grid": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "n": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            },
            "additionalProperties": False,
        }
    )
    payload = {
        "id": "nope",
        "at": "yesterday",
        "grid": [[1], [2, "x"]],
        "labels": {"a key": 1},
        "n": 1.5,
        "extra": True,
    }
    assert sorted(messages(schema, payload, "$.body")) == sorted(
        [
            '"nope" is not a "uuid" @ $.body.id',
            '"yesterday" is not a "date-time" @ $.body.at',
            '"x" is not of type "integer" @ $.body.grid[1][1]',
            "1 is not of type \"string\" @ $.body.labels['a key']",
            "1.5 is not valid under any of the schemas listed in the 'anyOf' keyword @ $.body.n",
            "Additional properties are not allowed ('extra' was unexpected) @ $.body",
        ]
    )
    good = {"id": "0b0f4c0e-5c1a-4a53-9d1e-2b4f4f0e8d11", "at": "2026-01-01T08:00:00Z"}
    assert validate(make_converter(), good, schema) is good  # checked, not converted


def test_query_types_follow_the_schema_properties() -> None:
    class Q(BaseModel):
        q: str
        limit: int | None = None
        ratio: float = 1.0
        tags: list[int] = []
        exact: bool = False

    types = property_types(Q.model_json_schema())
    assert types == {"q": str, "limit": int, "ratio": float, "tags": list[int], "exact": bool}


def test_pydantic_errors_have_the_same_paths() -> None:
    class Item(BaseModel):
        sku: str
        qty: int

    class Order(BaseModel):
        items: list[Item]

    assert messages(Order, {"items": [{"sku": "a", "qty": 1}, {"qty": "x"}]}, "$.body") == [
        "required field missing @ $.body.items[1].sku",
        "Input should be a valid integer, unable to parse string as an integer"
        " @ $.body.items[1].qty",
    ]
    assert messages(Order, [1]) == ["Input should be a valid dictionary or instance of Order @ $"]


def run_python(code: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_motet_loads_neither_pydantic_nor_the_validator() -> None:
    loaded = run_python(
        """
        import json, sys
        import motet, motet.steps
        print(json.dumps([m for m in ("pydantic", "jsonschema_rs") if m in sys.modules]))
        """
    )
    assert loaded == []


def test_motet_works_without_pydantic_installed() -> None:
    result = run_python(
        """
        import json, sys

        class NoPydantic:
            def find_spec(self, name, path=None, target=None):
                if name == "pydantic" or name.startswith("pydantic."):
                    raise ImportError("No module named 'pydantic'")

        sys.meta_path.insert(0, NoPydantic())
        import attrs
        from motet import InputValidationError, queue
        from motet.steps._schema import make_converter, validate, to_json

        @attrs.frozen
        class Pet:
            name: str

        out = []
        for schema in (Pet, {"type": "object", "required": ["name"]}):
            trigger = queue("pets", input=schema)
            try:
                validate(make_converter(), {}, trigger.input)
            except InputValidationError as exc:
                out.append(exc.messages)
        out.append(to_json(make_converter(), {"a": [Pet("x")]}))
        out.append("pydantic" in sys.modules)
        print(json.dumps(out))
        """
    )
    assert result == [
        ["required field missing @ $.name"],
        ["required field missing @ $.name"],
        {"a": [{"name": "x"}]},
        False,
    ]


@attrs.frozen
class Slot:
    id: uuid.UUID
    at: datetime.time


def test_uuid_and_time_fields_of_class_schemas_structure_and_serialize() -> None:
    """Regression: `uuid.UUID` was accepted as a schema type (and documented as
    `format: uuid`) but the converter had no hook for it, so every body failed with
    "Unsupported type"; found by bench/bench_schemas.py's attrs body."""
    converter = make_converter()
    slot = validate(converter, {"id": "0b0f4c0e-5c1a-4a53-9d1e-2b4f4f0e8d11", "at": "08:30"}, Slot)
    assert slot == Slot(uuid.UUID("0b0f4c0e-5c1a-4a53-9d1e-2b4f4f0e8d11"), datetime.time(8, 30))
    assert to_json(converter, slot) == {
        "id": "0b0f4c0e-5c1a-4a53-9d1e-2b4f4f0e8d11",
        "at": "08:30:00",
    }
    assert messages(Slot, {"id": "nope", "at": 830}) == [
        "invalid value for type, expected UUID @ $.id",
        "invalid value for type, expected time @ $.at",
    ]


def test_an_attrs_regex_validator_says_its_message_only() -> None:
    """Regression: `matches_re` raises ValueError(message, attribute, pattern, value), and
    the problem detail printed that whole tuple, with the Attribute's repr."""

    @attrs.frozen
    class Zip:
        code: str = attrs.field(validator=attrs.validators.matches_re(r"[0-9]{5}"))

    assert messages(Zip, {"code": "7500"}) == [
        "invalid value ('code' must match regex '[0-9]{5}' ('7500' doesn't)) @ $"
    ]


def test_a_0x_event_step_takes_a_json_schema_or_a_model_as_input() -> None:
    class Msg(BaseModel):
        text: str

    for schema in (Msg.model_json_schema(), Msg):
        config = {"type": "event", "name": "Echo", "subscribes": ["a", "b"], "input": schema}
        step = load_step(config, lambda message, ctx: None)
        assert [t.topic for t in step.triggers] == ["a", "b"]
        inputs = {t.input for t in step.triggers}  # one schema, compiled once, shared
        assert len(inputs) == 1
        [loaded] = inputs
        assert loaded is Msg if schema is Msg else isinstance(loaded, JsonSchema)
