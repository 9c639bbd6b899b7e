"""Motia's state ops address fields with JSON-pointer-like paths (`"/status"`, `"/a/b"`):
they reach the same nested fields as the dotted form, never a key named "/status"."""

from __future__ import annotations

from typing import Any

import pytest

from motet._state_writes import StateWrite, UpdateOp


def apply_ops(old: Any, *ops: dict[str, Any]) -> Any:
    return StateWrite.update(list(ops)).apply(old)


def test_a_pointer_path_addresses_a_top_level_field() -> None:
    new = apply_ops(
        {"status": "pending", "n": 1}, {"type": "set", "path": "/status", "value": "done"}
    )
    assert new == {"status": "done", "n": 1}


def test_a_pointer_path_addresses_nested_fields_and_creates_parents() -> None:
    new = apply_ops(
        {"a": {"b": 1}},
        {"type": "increment", "path": "/a/b", "by": 2},
        {"type": "set", "path": "/x/y/z", "value": True},
        {"type": "remove", "path": "/a/gone"},
    )
    assert new == {"a": {"b": 3}, "x": {"y": {"z": True}}}


def test_pointer_escapes_name_fields_with_slash_and_tilde() -> None:
    assert UpdateOp.parse({"op": "set", "path": "/a~1b/c~0d", "value": 1}).path == "a/b.c~d"


def test_the_dotted_form_is_unchanged() -> None:
    assert UpdateOp.parse({"op": "set", "path": "a.b", "value": 1}).path == "a.b"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/", "empty field name"),
        ("/a//b", "empty field name"),
        ("/a/", "empty field name"),
        ("/a.b", r"field name 'a.b' contains '.'"),
    ],
)
def test_bad_pointer_paths_are_clear_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        UpdateOp.parse({"op": "set", "path": path, "value": 1})
    assert repr(path) in str(caught.value)
