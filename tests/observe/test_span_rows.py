"""Telemetry buffers spans as rows (`SpanRow`, a `Span`'s fields in order) and makes `Span`
records only for stores that take them and when spans are read: whichever the store, the
spans it keeps are the ones the observer saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings

from motet.observe import (
    MemoryTelemetryStore,
    Span,
    SpanQuery,
    SqliteTelemetryStore,
    TelemetryOptions,
)
from motet.observe._records import StateWriteInfo, span_row
from motet.observe._sqlite_store import row_json, span_json

from ._app import http_step, open_observed, queue_step
from ._spans import SPANS


@settings(max_examples=200, deadline=None)
@given(SPANS)
def test_a_span_row_is_the_span_and_encodes_as_the_span_does(s: Span) -> None:
    row = span_row(s)
    assert Span(*row) == s
    assert row_json(row) == span_json(s)


class SpanRecorder(MemoryTelemetryStore):
    """A store that takes `Span`s only (no `write_rows`), as a user's own store would."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[Any] = []

    def write(self, logs: Any, spans: Any, *, now: float) -> None:
        self.written.extend(spans)
        super().write(logs, spans, now=now)


async def test_a_store_of_spans_and_the_sqlite_store_keep_the_same_spans(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async def ingest(request: Any, ctx: Any) -> Any:
        await ctx.emit("work", {"n": 1})
        return {"ok": True}

    async def work(data: Any, ctx: Any) -> None:
        await ctx.state.set("jobs", "j1", {"done": True})

    async def fail(data: Any, ctx: Any) -> None:
        raise ValueError("no")

    steps = [
        http_step("Ingest", "POST", "/in", ingest, enqueues=["work"]),
        queue_step("Work", "work", work),
        queue_step("Fail", "work", fail, options={"max_retries": 0}),
    ]
    recorder = SpanRecorder()
    async with open_observed(steps, telemetry=TelemetryOptions(store=recorder)) as app:
        response = await app.http.post("/in", json={})
        await app.settle()
        assert app.runtime.publisher is not None
        await app.runtime.publisher.publish("work", {"n": 2}, trace_id="b" * 32, source=None)
        await app.settle()
        read = await app.telemetry.spans(SpanQuery(limit=100))
    assert response.status_code == 200
    assert recorder.written and all(type(s) is Span for s in recorder.written)
    kinds = sorted((s.kind, s.name, s.outcome) for s in recorder.written)
    assert kinds == [
        ("emit", "emit work", "ok"),
        ("handler", "Fail", "error"),
        ("handler", "Fail", "error"),
        ("handler", "Ingest", "ok"),
        ("handler", "Work", "ok"),
        ("handler", "Work", "ok"),
        ("http", "POST /in", "ok"),
    ]
    (work_span, *_) = [s for s in recorder.written if s.name == "Work"]
    assert work_span.state_writes == (StateWriteInfo("jobs", "j1", "created"),)
    (http_span,) = [s for s in recorder.written if s.kind == "http"]
    assert (http_span.status, http_span.trigger, http_span.step) == (200, "http", "Ingest")
    # The same rows through the SQLite store's own path read back as the same spans.
    sqlite = SqliteTelemetryStore(tmp_path / "telemetry.db")
    sqlite.write_rows([], [span_row(s) for s in recorder.written], now=recorder.written[0].started)
    stored = sqlite.spans(SpanQuery(limit=100))
    sqlite.close()
    assert sorted(stored, key=lambda s: s.span_id) == sorted(read, key=lambda s: s.span_id)
    assert sorted(read, key=lambda s: s.span_id) == sorted(
        recorder.written, key=lambda s: s.span_id
    )


def test_the_observer_records_hand_written_inits_make_what_attrs_makes() -> None:
    """HandlerRun and HttpExchange set their slots by descriptor (one of each per observed
    run or request): every field lands in its own slot, defaults hold, they stay frozen."""
    import attrs
    import pytest

    from motet._observer import HttpExchange
    from motet.actors._dispatcher import HandlerRun

    given: dict[str, Any] = {
        **dict(step="S", trigger="queue", trace_id="t", message_id="m", attempt=2),
        **dict(started=1.5, duration=0.25, outcome="error", error="E: no", run_id="r"),
        **dict(topic="x", traceback="tb"),
    }
    run = HandlerRun(**given)
    assert attrs.asdict(run) == given
    assert HandlerRun(*given.values()) == run
    assert attrs.asdict(HandlerRun("S", "http", "t", None, None, 1.0, 0.5, "ok")) == {
        **dict(step="S", trigger="http", trace_id="t", message_id=None, attempt=None),
        **dict(started=1.0, duration=0.5, outcome="ok", error=None, run_id=""),
        **dict(topic=None, traceback=None),
    }
    exchange_fields: dict[str, Any] = {
        **dict(method="POST", route="/a", path="/a", status=201, trace_id="t", step="S"),
        "duration": 0.5,
    }
    exchange = HttpExchange(**exchange_fields)
    assert attrs.asdict(exchange) == exchange_fields
    assert attrs.evolve(exchange, status=500).status == 500
    for record in (run, exchange):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            record.step = "other"  # type: ignore[misc]


def test_span_retention_by_count_holds_after_the_table_emptied(tmp_path: Path) -> None:
    """A span's seq is a plain rowid in a new file (no AUTOINCREMENT): once age empties the
    table, numbering starts over, and the count limit still keeps the newest spans."""
    from motet.observe import Retention

    def spans(first: int, n: int, at: float) -> list[Span]:
        return [
            Span(f"s{i}", "t", "handler", "A", at + i * 1e-3, 0.1, step="A")
            for i in range(first, first + n)
        ]

    store = SqliteTelemetryStore(tmp_path / "t.db", Retention(max_spans=2, max_age=100))
    (sql,) = store._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'spans'").fetchone()
    assert "AUTOINCREMENT" not in sql
    store.write([], spans(0, 4, 1000.0), now=1000.0)
    assert [s.span_id for s in store.spans(SpanQuery())] == ["s2", "s3"]
    store.write([], [], now=5000.0)  # everything is past max_age
    assert store.spans(SpanQuery()) == []
    store.write([], spans(10, 3, 5000.0), now=5000.0)
    store.write([], spans(20, 1, 5000.0), now=5000.0)
    assert [s.span_id for s in store.spans(SpanQuery())] == ["s12", "s20"]
    store.close()


async def test_a_sqlite_store_that_overrides_write_is_written_through_it(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Rows go straight to the SQLite store's own `write_rows`; a subclass that overrides
    `write` gets `Span`s through its `write`, as before rows existed."""

    class Counting(SqliteTelemetryStore):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            self.written: list[Any] = []

        def write(self, logs: Any, spans: Any, *, now: float) -> None:
            self.written.extend(spans)
            super().write(logs, spans, now=now)

    async def work(data: Any, ctx: Any) -> None:
        return None

    store = Counting(tmp_path / "t.db")
    options = TelemetryOptions(store=store)
    async with open_observed([queue_step("Work", "work", work)], telemetry=options) as app:
        assert app.runtime.publisher is not None
        await app.runtime.publisher.publish("work", {}, trace_id="c" * 32, source=None)
        await app.settle()
        read = await app.telemetry.spans(SpanQuery(limit=10))
    assert [type(s) for s in store.written] == [Span, Span]
    assert sorted(read, key=lambda s: s.kind) == sorted(store.written, key=lambda s: s.kind)
