"""JSON Schema output for step schemas (used by OpenAPI and the console)."""

import dataclasses
import datetime
import enum
import uuid
from typing import Any, Literal, NotRequired, Optional, TypedDict

import attrs
import pytest

from motet.steps import json_schema


class Size(enum.Enum):
    S = "s"
    L = "l"


@attrs.frozen
class Node:
    name: str
    children: list["Node"] = attrs.Factory(list)


class Meta(TypedDict):
    source: str
    user: NotRequired[str]


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    quantity: int
    size: Size
    note: Optional[str] = None  # noqa: UP045
    kind: Literal["food", "toy"] = "food"
    tree: Node | None = None
    meta: Meta | None = None
    prices: dict[str, float] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    pair: tuple[int, str] = (0, "")
    when: datetime.datetime | None = None


def test_dataclass_with_nested_and_recursive_classes() -> None:
    schema = json_schema(Order)
    assert schema["type"] == "object"
    assert schema["title"] == "Order"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["id", "quantity", "size"]
    props = schema["properties"]
    assert props["id"] == {"type": "string", "format": "uuid"}
    assert props["quantity"] == {"type": "integer"}
    assert props["size"] == {"enum": ["s", "l"], "title": "Size"}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["kind"] == {"enum": ["food", "toy"]}
    assert props["tree"] == {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}
    assert props["prices"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["when"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert schema["$defs"]["Node"] == {
        "type": "object",
        "title": "Node",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
        },
        "additionalProperties": False,
        "required": ["name"],
    }
    assert schema["$defs"]["Meta"]["required"] == ["source"]


def test_ref_prefix_for_openapi() -> None:
    schema = json_schema(Node, ref_prefix="#/components/schemas/")
    assert schema["properties"]["children"]["items"] == {"$ref": "#/components/schemas/Node"}


def test_non_class_schemas() -> None:
    assert json_schema(None) == {}
    assert json_schema(Any) == {}
    assert json_schema(list[int]) == {"type": "array", "items": {"type": "integer"}}
    assert json_schema(int | None) == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert json_schema(list[Node])["$defs"]["Node"]["title"] == "Node"


def test_unsupported_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no JSON Schema for"):
        json_schema(object())
