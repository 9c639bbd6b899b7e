"""StateWrite / UpdateOp: parsing what users send, and applying it to documents."""

from __future__ import annotations

from typing import Any

import pytest

from motet._convert import structure, unstructure
from motet.state import StateWrite, UpdateOp


def apply_ops(old: Any, *ops: dict[str, Any]) -> Any:
    return StateWrite.update(list(ops)).apply(old)


# -- parsing ---------------------------------------------------------------------------


def test_parse_accepts_motia_and_motet_spellings() -> None:
    assert UpdateOp.parse({"type": "increment", "path": "n", "by": 2}) == UpdateOp(
        "increment", "n", 2
    )
    assert UpdateOp.parse({"op": "set", "field": "a.b", "value": [1]}) == UpdateOp(
        "set", "a.b", [1]
    )
    assert UpdateOp.parse({"op": "remove", "path": "x"}) == UpdateOp("remove", "x", None)


@pytest.mark.parametrize("op", ["increment", "decrement"])
def test_increment_and_decrement_default_to_one(op: str) -> None:
    assert UpdateOp.parse({"op": op, "path": "n"}).value == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "append", "path": "a", "value": 1}, r"one of \['set', 'merge'.*got 'append'"),
        ({"path": "a", "value": 1}, "got None"),
        ({"op": "set", "path": 3, "value": 1}, "path must be a string, got 3"),
        ({"op": "set", "path": None, "value": 1}, "path must be a string, got None"),
        ({"op": "set", "path": "a..b", "value": 1}, "dotted field names.*'a..b'"),
        ({"op": "set", "path": ".a", "value": 1}, "dotted field names"),
        ({"op": "set", "path": "a.", "value": 1}, "dotted field names"),
        ({"op": "increment", "path": "n", "value": "2"}, "increment needs a number, got '2'"),
        ({"op": "decrement", "path": "n", "by": True}, "decrement needs a number, got True"),
        ({"op": "merge", "path": "a", "value": [1]}, r"merge needs an object, got \[1\]"),
        ({"op": "merge", "path": "a"}, "merge needs an object, got None"),
        ({"op": "set", "path": "a", "vlaue": 1}, r"unknown keys \['vlaue'\]"),
    ],
)
def test_parse_refuses_bad_ops(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UpdateOp.parse(raw)


@pytest.mark.parametrize("raw", ["increment", ["op", "set"], 3, None])
def test_an_op_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match="must be an object"):
        StateWrite.update([raw])


@pytest.mark.parametrize("change", ["count", b"count", 5, None])
def test_update_takes_a_dict_or_a_list(change: Any) -> None:
    with pytest.raises(ValueError, match="a dict to merge or a list of ops"):
        StateWrite.update(change)


def test_update_with_a_dict_is_one_root_merge() -> None:
    write = StateWrite.update({"a": 1})
    assert write.ops == (UpdateOp("merge", "", {"a": 1}),)


# -- applying --------------------------------------------------------------------------


def test_set_and_delete() -> None:
    assert StateWrite.set({"a": 1}).apply({"old": True}) == {"a": 1}
    assert StateWrite.delete().apply({"old": True}) is None


def test_set_stores_a_copy() -> None:
    value = {"tags": ["a"]}
    result = StateWrite.set(value).apply(None)
    value["tags"].append("b")
    assert result == {"tags": ["a"]}


def test_update_never_mutates_the_old_document() -> None:
    old = {"n": 1, "inner": {"x": 1}}
    new = apply_ops(old, {"op": "increment", "path": "inner.x"}, {"op": "remove", "path": "n"})
    assert old == {"n": 1, "inner": {"x": 1}}
    assert new == {"inner": {"x": 2}}


def test_dict_update_merges_shallowly_and_creates_missing_documents() -> None:
    assert StateWrite.update({"b": 2}).apply({"a": 1, "b": 1}) == {"a": 1, "b": 2}
    assert StateWrite.update({"a": {"y": 2}}).apply({"a": {"x": 1}}) == {"a": {"y": 2}}
    assert StateWrite.update({"a": 1}).apply(None) == {"a": 1}


def test_ops_apply_in_order_on_nested_paths() -> None:
    new = apply_ops(
        {"count": 10},
        {"op": "set", "path": "profile.address.city", "value": "Lyon"},
        {"op": "merge", "path": "profile", "value": {"age": 3}},
        {"op": "increment", "path": "count", "value": 5},
        {"op": "decrement", "path": "count", "value": 2.5},
        {"op": "increment", "path": "stats.visits"},
        {"op": "decrement", "path": "stats.left"},
    )
    assert new == {
        "count": 12.5,
        "profile": {"address": {"city": "Lyon"}, "age": 3},
        "stats": {"visits": 1, "left": -1},
    }


def test_ops_at_the_document_root() -> None:
    assert apply_ops(None, {"op": "set", "value": [1, 2]}) == [1, 2]
    assert apply_ops({"a": 1}, {"op": "merge", "value": {"b": 2}}) == {"a": 1, "b": 2}
    assert apply_ops(2, {"op": "increment", "value": 3}) == 5
    assert apply_ops(4, {"op": "decrement"}) == 3
    assert apply_ops({"a": 1}, {"op": "remove"}) is None  # the document is deleted


def test_remove_of_a_missing_field_changes_nothing() -> None:
    assert apply_ops({"a": 1}, {"op": "remove", "path": "b"}) == {"a": 1}
    # Regression: removing under a missing parent used to create the parent as {}.
    assert apply_ops({"a": 1}, {"op": "remove", "path": "x.y.z"}) == {"a": 1}
    assert apply_ops({"x": {}}, {"op": "remove", "path": "x.y"}) == {"x": {}}


def test_set_replaces_a_null_parent_with_an_object() -> None:
    assert apply_ops({"a": None}, {"op": "set", "path": "a.b", "value": 1}) == {"a": {"b": 1}}


def test_merge_values_are_copied() -> None:
    value = {"tags": ["a"]}
    write = StateWrite.update([{"op": "merge", "path": "p", "value": value}])
    first = write.apply(None)
    first["p"]["tags"].append("mutated")
    assert write.apply(None) == {"p": {"tags": ["a"]}}


@pytest.mark.parametrize(
    ("old", "op", "message"),
    [
        (
            {"name": "Rex"},
            {"op": "increment", "path": "name"},
            "cannot increment name: it is 'Rex'",
        ),
        ({"ok": True}, {"op": "decrement", "path": "ok"}, "cannot decrement ok: it is True"),
        ({"n": [1]}, {"op": "increment", "path": "n"}, r"it is \[1\]"),
        ("text", {"op": "increment"}, "cannot increment the document: it is 'text'"),
        ([1, 2], {"op": "set", "path": "a", "value": 1}, "the document is not an object"),
        (5, {"op": "remove", "path": "a"}, "the document is not an object"),
        ({"a": 5}, {"op": "set", "path": "a.b", "value": 1}, "'a' is not an object"),
        ({"a": [1]}, {"op": "increment", "path": "a.0"}, "'a' is not an object"),
    ],
)
def test_ops_on_the_wrong_shape_raise(old: Any, op: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_ops(old, op)


def test_a_failing_op_leaves_the_old_document_untouched() -> None:
    old = {"count": 1, "name": "Rex"}
    with pytest.raises(ValueError):
        apply_ops(old, {"op": "increment", "path": "count"}, {"op": "increment", "path": "name"})
    assert old == {"count": 1, "name": "Rex"}


# -- serialized form (what durable backends store) ------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        StateWrite.set({"a": [1, {"b": None}]}),
        StateWrite.delete(),
        StateWrite.update({"a": 1}),
        StateWrite.update(
            [
                {"op": "increment", "path": "n", "by": 2},
                {"op": "remove", "path": "x"},
                {"type": "set", "path": "y", "value": None},
            ]
        ),
    ],
)
def test_json_round_trip(write: StateWrite) -> None:
    assert structure(unstructure(write), StateWrite) == write


@pytest.mark.parametrize("kind", ["replace", None, ""])
def test_from_json_refuses_an_unknown_kind(kind: Any) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of \['set', 'update', 'delete'\]"):
        structure({"kind": kind, "value": None, "ops": []}, StateWrite)
