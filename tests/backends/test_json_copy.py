"""json_copy / json_equal: what the memory backend does instead of a JSON round trip."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from datetime import date
from typing import Any

import pytest

from motet._errors import BackendError
from motet.backends._json_copy import json_clone, json_copy, json_equal


class Size(enum.IntEnum):
    LARGE = 3


class Color(enum.StrEnum):
    RED = "red"


class Shade(str, enum.Enum):  # noqa: UP042 (the older idiom: its str() is "Shade.DARK")
    DARK = "dark"


def test_copy_is_deep_and_equal() -> None:
    value = {"a": [1, {"b": [2.5, None, True]}], "c": "é"}
    copied = json_copy(value)
    assert copied == value
    assert copied is not value
    assert copied["a"] is not value["a"]
    assert copied["a"][1] is not value["a"][1]


def test_copy_normalizes_like_a_json_round_trip() -> None:
    value = {"t": (1, (2, 3)), "size": Size.LARGE, "color": Color.RED, "shade": Shade.DARK}
    copied = json_copy(value)
    assert copied == {"t": [1, [2, 3]], "size": 3, "color": "red", "shade": "dark"}
    assert copied == json.loads(json.dumps(value))
    assert type(copied["size"]) is int and type(copied["color"]) is str
    assert type(copied["shade"]) is str
    assert json_copy(OrderedDict(a=1)) == {"a": 1}
    assert type(json_copy(OrderedDict(a=1))) is dict


@pytest.mark.parametrize(
    ("value", "path", "got"),
    [
        ({"d": date(2026, 1, 1)}, r"\$\.d", "date"),
        ([1, [2, {3}]], r"\$\[1\]\[1\]", "set"),
        ({"a": {"b": [b"raw"]}}, r"\$\.a\.b\[0\]", "bytes"),
        ({"a": {1: "x"}}, r"\$\.a", r"key 1 \(int\)"),
        ({("k",): 1}, r"\$", r"key \('k',\) \(tuple\)"),
        (object(), r"\$", "object"),
    ],
)
def test_non_json_is_refused_with_its_path(value: Any, path: str, got: str) -> None:
    with pytest.raises(BackendError, match=rf"payload is not JSON at {path}: .*got {got}"):
        json_copy(value, where="payload")


def test_where_may_be_built_only_on_failure() -> None:
    calls: list[int] = []

    def where() -> str:
        calls.append(1)
        return "the message"

    json_copy({"fine": 1}, where=where)
    assert calls == []
    with pytest.raises(BackendError, match="the message is not JSON"):
        json_copy({"bad": {1, 2}}, where=where)


def test_clone_is_deep() -> None:
    value = json_copy({"a": [{"b": 1}], "c": 2})
    cloned = json_clone(value)
    cloned["a"][0]["b"] = 99
    assert value == {"a": [{"b": 1}], "c": 2}
    assert json_clone("s") == "s"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1),
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}),
        (None, None),
        ([], []),
        ("x", "x"),
    ],
)
def test_equal(a: Any, b: Any) -> None:
    assert json_equal(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (None, 0),
        ({"a": 1}, {"a": 1.0}),
        ({"a": 1}, {"a": 1, "b": None}),
        ([1, 2], [2, 1]),
        ([1], [1, 1]),
        ("1", 1),
        ({}, []),
    ],
)
def test_not_equal(a: Any, b: Any) -> None:
    assert not json_equal(a, b)
    assert not json_equal(b, a)
