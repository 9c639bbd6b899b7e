"""motet's own records through the one converter: the JSON shapes readers depend on (the
operator API, `--json` output, stored SQLite/Redis data, telemetry rows, JSON log lines)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import attrs
import pytest

import motet
from motet._convert import structure, unstructure, wire
from motet._logging import LogRecord
from motet._state_writes import StateChange, StateWrite, UpdateOp, change_event, state_change
from motet.observe._records import Emitted, Span, StateWriteInfo, StoredLog, summarize
from motet.observe._traces import TraceRow

PACKAGE = Path(motet.__file__).parent


def test_a_state_change_event_carries_the_change_as_it_always_did() -> None:
    change = state_change("pets", "p1", {"n": 1}, {"n": 2})
    event = change_event(change, "trace-1", 12.5)
    assert (event.topic, event.trace_id, event.created_at) == ("state:pets", "trace-1", 12.5)
    assert list(event.data.items()) == [
        ("namespace", "pets"),
        ("key", "p1"),
        ("value", {"n": 2}),
        ("old_value", {"n": 1}),
        ("event", "updated"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "changed", "event"),
    [
        (None, {"a": 1}, True, "created"),
        ({"a": 1}, {"a": 2}, True, "updated"),
        ({"a": 1}, None, True, "deleted"),
        ({"a": 1}, {"a": 1}, False, ""),
        (None, None, False, ""),
    ],
)
def test_state_change_names_the_event(old: Any, new: Any, changed: bool, event: str) -> None:
    assert state_change("ns", "k", old, new, changed=changed) == StateChange(
        "ns", "k", new, old, event
    )


def test_a_log_line_leaves_out_what_it_does_not_know_and_spreads_its_fields() -> None:
    bare = LogRecord(1.5, "info", "hello")
    assert json.dumps(unstructure(bare)) == '{"time": 1.5, "level": "info", "msg": "hello"}'
    full = LogRecord(
        2.0, "error", "boom", "s", "t", "m", 3, fields={"pet": "Rex", "n": 1}, traceback="TB"
    )
    assert list(unstructure(full).items()) == [
        ("time", 2.0),
        ("level", "error"),
        ("msg", "boom"),
        ("step", "s"),
        ("trace_id", "t"),
        ("message_id", "m"),
        ("attempt", 3),
        ("pet", "Rex"),
        ("n", 1),
        ("traceback", "TB"),
    ]


def test_a_stored_log_line_keeps_every_key() -> None:
    line = StoredLog(7, 1.0, "warn", "careful", fields={"x": 1})
    assert unstructure(line) == {
        "seq": 7,
        "time": 1.0,
        "level": "warn",
        "msg": "careful",
        "step": None,
        "trace_id": None,
        "message_id": None,
        "attempt": None,
        "fields": {"x": 1},
        "traceback": None,
    }


SPAN = Span(
    "s1",
    "t1",
    "handler",
    "create-pet",
    10.0,
    0.5,
    outcome="error",
    step="create-pet",
    trigger="queue",
    topic="pet.created",
    message_id="m1",
    attempt=2,
    error="ValueError: no",
    emitted=(Emitted("pet.saved", "m2"),),
    state_writes=(StateWriteInfo("pets", "p1", "created"),),
    traceback="TB",
)
SPAN_JSON = {
    "span_id": "s1",
    "trace_id": "t1",
    "kind": "handler",
    "name": "create-pet",
    "started": 10.0,
    "duration": 0.5,
    "outcome": "error",
    "step": "create-pet",
    "trigger": "queue",
    "topic": "pet.created",
    "message_id": "m1",
    "attempt": 2,
    "error": "ValueError: no",
    "status": None,
    "emitted": [{"topic": "pet.saved", "id": "m2"}],
    "state_writes": [{"namespace": "pets", "key": "p1", "event": "created"}],
    "traceback": "TB",
}


def test_a_span_row_reads_back_what_was_stored() -> None:
    assert unstructure(SPAN) == SPAN_JSON
    assert structure(json.loads(json.dumps(SPAN_JSON)), Span) == SPAN


def test_a_span_row_of_an_older_version_reads_with_defaults() -> None:
    old = {k: SPAN_JSON[k] for k in ("span_id", "trace_id", "kind", "name", "started", "duration")}
    assert structure(old, Span) == Span("s1", "t1", "handler", "create-pet", 10.0, 0.5)


def test_a_trace_row_puts_its_span_keys_beside_its_own() -> None:
    assert unstructure(TraceRow(SPAN, "s0", 1)) == {**SPAN_JSON, "parent_id": "s0", "depth": 1}


def test_a_trace_summary_carries_its_duration() -> None:
    summary = summarize("t1", [SPAN])
    assert list(unstructure(summary).items()) == [
        ("trace_id", "t1"),
        ("started", 10.0),
        ("ended", 10.5),
        ("duration", 0.5),
        ("spans", 1),
        ("errors", 1),
        ("root", "create-pet"),
        ("steps", ["create-pet"]),
    ]


def test_a_state_write_round_trips_and_checks_what_it_reads() -> None:
    write = StateWrite.update([{"op": "increment", "path": "n"}, {"op": "merge", "value": {}}])
    assert unstructure(write) == {
        "kind": "update",
        "value": None,
        "ops": [
            {"op": "increment", "path": "n", "value": 1},
            {"op": "merge", "path": "", "value": {}},
        ],
    }
    assert structure(unstructure(write), StateWrite) == write
    with pytest.raises(ValueError, match="increment needs a number"):
        structure({"kind": "update", "ops": [{"op": "increment", "value": "1"}]}, StateWrite)
    with pytest.raises(ValueError, match="state update path must be a string"):
        structure({"kind": "update", "ops": [{"op": "set", "path": 5}]}, StateWrite)
    with pytest.raises(ValueError, match="must be a JSON object"):
        structure(["set"], StateWrite)


def test_an_update_op_is_checked_however_it_is_made() -> None:
    with pytest.raises(ValueError, match="op must be one of"):
        UpdateOp("replace")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="merge needs an object"):
        UpdateOp("merge", "a", 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        StateWrite("replace")  # type: ignore[arg-type]


def test_wire_metadata_renames_omits_and_flattens() -> None:
    @attrs.frozen
    class Inner:
        a: int

    @attrs.frozen
    class Outer:
        name: str = attrs.field(metadata=wire(key="n"))
        inner: Inner = attrs.field(metadata=wire(flatten=True))
        note: str | None = attrs.field(default=None, metadata=wire(omit_none=True))

    assert unstructure(Outer("x", Inner(1))) == {"n": "x", "a": 1}
    assert unstructure(Outer("x", Inner(1), "hi")) == {"n": "x", "a": 1, "note": "hi"}


def test_no_record_writes_its_json_by_hand() -> None:
    hand_written = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
        and node.name in ("to_json", "from_json")
        and any(isinstance(a, ast.arg) and a.arg in ("self", "cls") for a in node.args.args)
    ]
    assert hand_written == []


def _imports(folder: str) -> set[str]:
    """The motet subpackages the modules of `motet/<folder>` import (relative or absolute)."""
    found = set()
    for path in (PACKAGE / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 2:
                    found.add(module.split(".")[0])
                elif node.level == 0 and module.startswith("motet."):
                    found.add(module.split(".")[1])
    return found


def test_backends_do_not_import_the_state_package() -> None:
    # state/ builds on backends/ (a StateStore writes through a StateBackend); what both
    # need, the writes and the changes, lives below them both.
    assert "state" not in _imports("backends")
