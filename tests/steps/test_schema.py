"""The runtime's converter: strict JSON structuring, path-addressed errors, JSON output.

No `from __future__ import annotations` here: Python 3.11 cannot see `NotRequired` in
string annotations (step loading refuses such TypedDicts; see test_config_errors).
"""

import dataclasses
import datetime
import enum
import math
from typing import Any, Literal, NotRequired, Optional, TypedDict

import attrs
import cattrs
import pytest

from motet._errors import InputValidationError
from motet.steps import make_converter, to_json, validate


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.frozen
class Owner:
    name: str


@dataclasses.dataclass
class Toy:
    kind: str
    price: float = 0.0


class Meta(TypedDict):
    source: str
    user: NotRequired[str]


@attrs.frozen
class Pet:
    name: str
    age: int
    vaccinated: bool = False
    priority: Priority = Priority.LOW
    kind: Literal["cat", "dog"] = "cat"
    owner: Optional[Owner] = None  # noqa: UP045  # the spelling users write
    toys: list[Toy] = attrs.Factory(list)
    tags: frozenset[str] = frozenset()
    scores: dict[str, int] = attrs.Factory(dict)
    meta: Meta | None = None
    born: datetime.datetime | None = None


@pytest.fixture
def conv() -> cattrs.Converter:
    return make_converter()


def errors(conv: cattrs.Converter, payload: Any, schema: Any, root: str = "$") -> list[str]:
    with pytest.raises(InputValidationError) as info:
        validate(conv, payload, schema, root=root)
    return info.value.messages


def test_valid_payload_is_structured(conv: cattrs.Converter) -> None:
    pet = validate(
        conv,
        {
            "name": "Rex",
            "age": 3,
            "vaccinated": True,
            "priority": "high",
            "kind": "dog",
            "owner": {"name": "Ann"},
            "toys": [{"kind": "ball", "price": 2}],
            "tags": ["good", "good"],
            "scores": {"fetch": 9},
            "meta": {"source": "api"},
            "born": "2024-05-01T10:00:00+00:00",
        },
        Pet,
    )
    assert pet == Pet(
        name="Rex",
        age=3,
        vaccinated=True,
        priority=Priority.HIGH,
        kind="dog",
        owner=Owner("Ann"),
        toys=[Toy("ball", 2.0)],
        tags=frozenset({"good"}),
        scores={"fetch": 9},
        meta={"source": "api"},
        born=datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.UTC),
    )
    assert isinstance(pet.toys[0].price, float)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"name": "Rex", "age": "5"}, ["invalid value for type, expected int @ $.age"]),
        ({"name": "Rex", "age": 5.9}, ["invalid value for type, expected int @ $.age"]),
        ({"name": "Rex", "age": 5.0}, ["invalid value for type, expected int @ $.age"]),
        ({"name": "Rex", "age": True}, ["invalid value for type, expected int @ $.age"]),
        (
            {"name": "Rex", "age": 5, "vaccinated": "false"},
            ["invalid value for type, expected bool @ $.vaccinated"],
        ),
        (
            {"name": "Rex", "age": 5, "vaccinated": 0},
            ["invalid value for type, expected bool @ $.vaccinated"],
        ),
        ({"name": 7, "age": 5}, ["invalid value for type, expected str @ $.name"]),
        ({"name": None, "age": 5}, ["invalid value for type, expected str @ $.name"]),
        ({"age": 5}, ["required field missing @ $.name"]),
        ({}, ["required field missing @ $.name", "required field missing @ $.age"]),
        ({"name": "Rex", "age": 5, "color": "red"}, ["extra fields found (color) @ $"]),
        ({"name": "Rex", "age": 5, "kind": "fish"}, ["must be one of ['cat', 'dog'] @ $.kind"]),
        (
            {"name": "Rex", "age": 5, "priority": "urgent"},
            ["must be one of ['low', 'high'] @ $.priority"],
        ),
        ({"name": "Rex", "age": 5, "owner": ["Ann"]}, ["expected an object, got array @ $.owner"]),
        ({"name": "Rex", "age": 5, "owner": "Ann"}, ["expected an object, got string @ $.owner"]),
        ({"name": "Rex", "age": 5, "owner": {}}, ["required field missing @ $.owner.name"]),
        ({"name": "Rex", "age": 5, "toys": "ball"}, ["expected an array, got string @ $.toys"]),
        ({"name": "Rex", "age": 5, "tags": "abc"}, ["expected an array, got string @ $.tags"]),
        (
            {"name": "Rex", "age": 5, "toys": [{"kind": "ball"}, {"price": "1"}, 3]},
            [
                "required field missing @ $.toys[1].kind",
                "invalid value for type, expected float @ $.toys[1].price",
                "expected an object, got number @ $.toys[2]",
            ],
        ),
        (
            {"name": "Rex", "age": 5, "scores": {"fetch": "9"}},
            ["invalid value for type, expected int @ $.scores['fetch']"],
        ),
        ({"name": "Rex", "age": 5, "scores": [1]}, ["expected an object, got array @ $.scores"]),
        (
            {"name": "Rex", "age": 5, "meta": {"source": "api", "extra": 1}},
            ["extra fields found (extra) @ $.meta"],
        ),
        ({"name": "Rex", "age": 5, "meta": {}}, ["required field missing @ $.meta.source"]),
        ({"name": "Rex", "age": 5, "meta": 1}, ["expected an object, got number @ $.meta"]),
    ],
)
def test_invalid_payloads(conv: cattrs.Converter, payload: Any, expected: list[str]) -> None:
    assert sorted(errors(conv, payload, Pet)) == sorted(expected)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [([], "array"), ("Rex", "string"), (None, "null"), (3, "number"), (True, "boolean")],
)
def test_non_object_payload_where_object_expected(
    conv: cattrs.Converter, payload: Any, kind: str
) -> None:
    for schema in (Pet, Toy, Meta):
        assert errors(conv, payload, schema, root="$.body") == [
            f"expected an object, got {kind} @ $.body"
        ]


def test_root_changes_every_path(conv: cattrs.Converter) -> None:
    assert errors(conv, {"name": "Rex", "age": "x"}, Pet, root="$.body") == [
        "invalid value for type, expected int @ $.body.age"
    ]


def test_error_message_and_what(conv: cattrs.Converter) -> None:
    with pytest.raises(InputValidationError) as info:
        validate(conv, {"age": 1}, Pet, what="body")
    assert str(info.value) == "invalid body: required field missing @ $.name"
    assert isinstance(info.value.__cause__, cattrs.ClassValidationError)


def test_scalars_and_containers_as_schemas(conv: cattrs.Converter) -> None:
    assert validate(conv, 5, float) == 5.0
    assert isinstance(validate(conv, 5, float), float)
    assert validate(conv, 2.5, float) == 2.5
    assert validate(conv, None, Optional[int]) is None  # noqa: UP045
    assert validate(conv, ["a"], list[str]) == ["a"]
    assert validate(conv, [1, 2], tuple[int, ...]) == (1, 2)
    assert validate(conv, {"a": [1]}, dict[str, list[int]]) == {"a": [1]}
    assert validate(conv, "high", Priority) is Priority.HIGH
    assert validate(conv, {"anything": [1, None]}, Any) == {"anything": [1, None]}
    assert errors(conv, "5", int) == ["invalid value for type, expected int @ $"]
    assert errors(conv, "x", Literal["a", "b"]) == ["must be one of ['a', 'b'] @ $"]
    assert errors(conv, ["a", 2], list[str]) == ["invalid value for type, expected str @ $[1]"]
    assert errors(conv, "ab", list[str]) == ["expected an array, got string @ $"]
    assert errors(conv, True, float) == ["invalid value for type, expected float @ $"]


def test_no_schema_passes_json_through(conv: cattrs.Converter) -> None:
    payload = {"a": [1, {"b": None}]}
    assert validate(conv, payload, None) is payload


def test_each_runtime_gets_its_own_converter() -> None:
    a, b = make_converter(), make_converter()
    assert a is not b
    a.register_structure_hook(Owner, lambda v, _: Owner("hooked"))
    assert validate(b, {"name": "Ann"}, Owner) == Owner("Ann")
    assert validate(a, {"name": "Ann"}, Owner) == Owner("hooked")


def test_to_json_unstructures_handler_output(conv: cattrs.Converter) -> None:
    pet = Pet(
        name="Rex",
        age=3,
        priority=Priority.HIGH,
        owner=Owner("Ann"),
        toys=[Toy("ball")],
        tags=frozenset({"good"}),
        born=datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.UTC),
    )
    assert to_json(conv, {"pet": pet, "ids": (1, 2), 7: None}) == {
        "pet": {
            "name": "Rex",
            "age": 3,
            "vaccinated": False,
            "priority": "high",
            "kind": "cat",
            "owner": {"name": "Ann"},
            "toys": [{"kind": "ball", "price": 0.0}],
            "tags": ["good"],
            "scores": {},
            "meta": None,
            "born": "2024-05-01T10:00:00+00:00",
        },
        "ids": [1, 2],
        "7": None,
    }
    assert to_json(conv, None) is None
    assert to_json(conv, [Toy("x", 1)]) == [{"kind": "x", "price": 1}]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": object()}, r"object is not JSON-serializable @ \$\.a"),
        ({"a": [1, math.nan]}, r"nan is not a JSON number @ \$\.a\[1\]"),
        ({1.5: 1}, r"object key 1.5 is not a string @ \$"),
        ({(1, 2): 1}, r"cannot convert dict to JSON: unhashable type"),
    ],
)
def test_to_json_refuses_what_json_cannot_hold(
    conv: cattrs.Converter, value: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        to_json(conv, value)


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"next": [value]}
    return value


def test_to_json_says_so_when_data_is_too_deep_or_holds_itself(conv: cattrs.Converter) -> None:
    # What a handler can build in Python and emit or store (a request body is refused at
    # the gateway long before: 128 levels).
    assert to_json(conv, _nested(100)) == _nested(100)
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    for value in (_nested(5_000), looped, [looped]):
        with pytest.raises(TypeError, match="holds itself, or it is nested deeper") as caught:
            to_json(conv, value)
        assert "recursion limit" in str(caught.value) and caught.value.__cause__ is None


def test_round_trip(conv: cattrs.Converter) -> None:
    pet = Pet(name="Rex", age=3, owner=Owner("Ann"), meta={"source": "x", "user": "u"})
    assert validate(conv, to_json(conv, pet), Pet) == pet


def test_attrs_validator_message_is_kept(conv: cattrs.Converter) -> None:
    @attrs.frozen
    class Named:
        name: str = attrs.field(validator=attrs.validators.min_len(1))

    assert errors(conv, {"name": ""}, Named) == [
        "invalid value (Length of 'name' must be >= 1: 0) @ $"
    ]
