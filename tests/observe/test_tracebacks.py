"""A failed handler's traceback, with the user's file and line, wherever the failure shows:
the pretty and JSON log formats, stdlib logging, spans (memory and SQLite stores, including a
telemetry file written before tracebacks were stored), and the operator API."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from motet import RuntimeOptions, WallClock, open_runtime
from motet._convert import unstructure
from motet._logging import LogHub, LogRecord, stdlib_sink, stream_sink
from motet.backends import MemoryBackend
from motet.observe import (
    LogQuery,
    MemoryTelemetryStore,
    Span,
    SpanQuery,
    SqliteTelemetryStore,
    TelemetryStore,
)
from motet.project import ProjectConfig

from ._app import ANCHOR, http_step, open_observed, queue_step

T0 = 1_767_225_600.0
HERE = Path(__file__).name


def read_items(order: Any) -> Any:
    return order["items"]  # the user's failing line


ITEMS_LINE = read_items.__code__.co_firstlineno + 1
USER_FRAME = f'{HERE}", line {ITEMS_LINE}, in read_items'


def failure() -> KeyError:
    try:
        read_items({})
    except KeyError as exc:
        return exc
    raise AssertionError("read_items did not fail")


def test_pretty_lines_print_the_traceback_as_indented_lines() -> None:
    out = io.StringIO()
    hub = LogHub(lambda: T0, level="info")
    hub.add_sink(stream_sink(out, fmt="pretty"))
    hub.logger(step="Orders").error("handler failed", exc_info=failure(), attempt_left=0)
    first, *rest = out.getvalue().rstrip("\n").split("\n")
    assert "[Orders] handler failed" in first and "\\n" not in first
    assert rest and all(row.startswith("    ") for row in rest)
    assert any(USER_FRAME in row for row in rest)
    assert rest[-1] == "    KeyError: 'items'"


def test_json_lines_have_a_traceback_field() -> None:
    out = io.StringIO()
    hub = LogHub(lambda: T0, level="info")
    hub.add_sink(stream_sink(out, fmt="json"))
    hub.logger(step="Orders").error("handler failed", exc_info=failure())
    hub.logger(step="Orders").info("fine")
    failed, fine = (json.loads(line) for line in out.getvalue().splitlines())
    assert USER_FRAME in failed["traceback"]
    assert failed["traceback"].endswith("KeyError: 'items'")
    assert "traceback" not in fine


def test_stdlib_logging_prints_the_traceback_under_the_message() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    target = logging.getLogger("motet.test_tracebacks")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    target.propagate = False
    try:
        sink = stdlib_sink("motet.test_tracebacks")
        sink(LogRecord(time=T0, level="error", message="handler failed", traceback="TB\n  here"))
        sink(LogRecord(time=T0, level="info", message="plain"))
    finally:
        target.removeHandler(handler)
    assert out.getvalue() == "ERROR handler failed\nTB\n  here\nINFO plain\n"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TelemetryStore:
    if request.param == "memory":
        return MemoryTelemetryStore()
    return SqliteTelemetryStore(tmp_path / "telemetry.db")


def test_stores_keep_the_traceback_of_spans_and_log_lines(store: TelemetryStore) -> None:
    line = LogRecord(time=T0, level="error", message="failed", trace_id="t", traceback="TB 1")
    span = Span(
        span_id="s1",
        trace_id="t",
        kind="handler",
        name="A",
        started=T0,
        duration=0.1,
        outcome="error",
        error="KeyError: 'items'",
        traceback="TB 2",
    )
    store.write([line], [span], now=T0)
    [stored_line] = store.logs(LogQuery())
    [stored_span] = store.spans(SpanQuery())
    assert stored_line.traceback == "TB 1" and unstructure(stored_line)["traceback"] == "TB 1"
    assert stored_span.traceback == "TB 2" and unstructure(stored_span)["traceback"] == "TB 2"


def test_a_telemetry_file_from_before_tracebacks_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE logs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, level TEXT NOT NULL,
            level_no INTEGER NOT NULL, message TEXT NOT NULL, step TEXT, trace_id TEXT,
            message_id TEXT, attempt INTEGER, fields TEXT NOT NULL);
        INSERT INTO logs (time, level, level_no, message, fields)
            VALUES (1767225600.0, 'info', 20, 'written by an older motet', '{}');
        """
    )
    old.commit()
    old.close()
    store = SqliteTelemetryStore(path)
    store.write([LogRecord(time=T0 + 1, level="error", message="new", traceback="TB")], [], now=T0)
    store.close()
    again = SqliteTelemetryStore(path)  # a second open finds the column and adds nothing
    lines = again.logs(LogQuery())
    again.close()
    assert [(x.message, x.traceback) for x in lines] == [
        ("written by an older motet", None),
        ("new", "TB"),
    ]


async def test_a_failed_queue_handler_span_keeps_the_users_frame(autojump_clock: Any) -> None:
    async def handler(order: Any, ctx: Any) -> None:
        read_items(order)

    step = queue_step("Orders", "orders", handler, options={"maxRetries": 0})
    async with open_observed([step]) as app:
        assert app.runtime.publisher is not None
        await app.runtime.publisher.publish("orders", {"id": 1}, trace_id="a" * 32)
        await app.settle()
        [span] = await app.telemetry.spans(SpanQuery(step="Orders"))
        trace = (await app.http.get(f"/_motet/traces/{'a' * 32}")).json()
        letters = (await app.http.get("/_motet/dead-letters")).json()["dead_letters"]
    assert span.outcome == "error" and span.error == "KeyError: 'items'"
    assert span.traceback is not None and USER_FRAME in span.traceback
    assert span.traceback.endswith("KeyError: 'items'")
    assert "_dispatcher.py" not in span.traceback  # motet's frames are folded
    [handler_span] = [s for s in trace["spans"] if s["kind"] == "handler"]
    assert handler_span["traceback"] == span.traceback
    # The operator API hands the dead letter's traceback to the console (None until the
    # step actor stores one).
    assert len(letters) == 1 and "traceback" in letters[0]


async def test_an_http_handler_failure_logs_its_traceback_as_lines(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> None:
        read_items({})

    out = io.StringIO()
    options = RuntimeOptions(log_stream=out, shutdown_timeout=0.0)
    async with open_runtime(
        [http_step("Broken", "GET", "/broken", handler)],
        backend=MemoryBackend(),
        project=ProjectConfig(log_format="pretty"),
        clock=WallClock(ANCHOR),
        options=options,
    ) as runtime:
        from motet.testing._http import TestClient

        response = await TestClient(runtime).get("/broken")
    assert response.status == 500
    text = out.getvalue()
    error_line = next(line for line in text.splitlines() if " ERROR " in line)
    assert response.json["error_id"] in error_line
    assert "\\n" not in text and "traceback=" not in text
    block = text[text.index(error_line) :].splitlines()
    assert any(row.startswith("    ") and USER_FRAME in row for row in block[1:])
    assert "    KeyError: 'items'" in block
