"""Telemetry stores: queries, retention by count and age, surviving a restart, and a full
buffer that drops telemetry instead of slowing handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motet._convert import structure, unstructure
from motet._logging import LogRecord
from motet.backends._sqlite import SqliteBackend
from motet.observe import (
    LogQuery,
    MemoryTelemetryStore,
    Retention,
    Span,
    SpanQuery,
    SqliteTelemetryStore,
    TelemetryOptions,
    TelemetryStore,
)
from motet.observe._sqlite_store import span_json

from ._app import http_step, open_observed, queue_step
from ._spans import SPANS

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def record(i: int, *, step: str = "A", level: str = "info", trace: str = "t1") -> LogRecord:
    return LogRecord(
        time=T0 + i,
        level=level,
        message=f"line {i}",
        step=step,
        trace_id=trace,
        message_id=f"m{i}",
        attempt=1,
        fields={"i": i},
    )


def span(i: int, *, step: str = "A", trace: str = "t1", outcome: str = "ok") -> Span:
    return Span(
        span_id=f"s{i}",
        trace_id=trace,
        kind="handler",
        name=step,
        started=T0 + i,
        duration=0.5,
        outcome=outcome,
        step=step,
        trigger="queue",
    )


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    def make(retention: Retention | None = None) -> TelemetryStore:
        if request.param == "memory":
            return MemoryTelemetryStore(retention)
        return SqliteTelemetryStore(tmp_path / "telemetry.db", retention)

    return make


def test_queries_by_trace_step_level_text_time_and_cursor(make_store: Any) -> None:
    store = make_store()
    store.write(
        [
            record(0),
            record(1, step="B", level="warn", trace="t2"),
            record(2, level="error"),
            record(3, step="B"),
        ],
        [span(0), span(1, step="B", trace="t2", outcome="error"), span(2)],
        now=T0 + 5,
    )
    assert [line.message for line in store.logs(LogQuery())] == [f"line {i}" for i in range(4)]
    assert [line.seq for line in store.logs(LogQuery(limit=2))] == [3, 4]  # the newest two
    assert [line.message for line in store.logs(LogQuery(after=2))] == ["line 2", "line 3"]
    assert [line.message for line in store.logs(LogQuery(step="B"))] == ["line 1", "line 3"]
    assert [line.message for line in store.logs(LogQuery(level="warn"))] == ["line 1", "line 2"]
    assert [line.message for line in store.logs(LogQuery(trace_id="t2"))] == ["line 1"]
    assert [line.message for line in store.logs(LogQuery(text="LINE 3"))] == ["line 3"]
    assert [line.message for line in store.logs(LogQuery(since=T0 + 1, until=T0 + 3))] == [
        "line 1",
        "line 2",
    ]
    line = store.logs(LogQuery(after=0, limit=1))[0]
    assert (line.step, line.trace_id, line.message_id, line.attempt, dict(line.fields)) == (
        "A",
        "t1",
        "m0",
        1,
        {"i": 0},
    )
    assert [s.span_id for s in store.spans(SpanQuery(trace_id="t1"))] == ["s0", "s2"]
    assert [s.span_id for s in store.spans(SpanQuery(step="B"))] == ["s1"]
    assert [s.span_id for s in store.spans(SpanQuery(since=T0 + 1))] == ["s1", "s2"]
    traces = store.traces(SpanQuery())
    assert [(t.trace_id, t.spans, t.errors) for t in traces] == [("t2", 1, 1), ("t1", 2, 0)]
    assert [t.trace_id for t in store.traces(SpanQuery(step="B"))] == ["t2"]
    store.close()


def test_retention_keeps_at_most_the_newest_and_drops_the_old(make_store: Any) -> None:
    store = make_store(Retention(max_logs=3, max_spans=2, max_age=100))
    store.write([record(i) for i in range(5)], [span(i) for i in range(4)], now=T0 + 10)
    assert [line.message for line in store.logs(LogQuery())] == ["line 2", "line 3", "line 4"]
    assert [s.span_id for s in store.spans(SpanQuery())] == ["s2", "s3"]
    # 100 s later only what is younger than max_age remains.
    store.write([record(150)], [span(150)], now=T0 + 203.5)
    assert [line.message for line in store.logs(LogQuery())] == ["line 150"]
    assert [s.span_id for s in store.spans(SpanQuery())] == ["s150"]
    store.close()


def test_retention_and_queries_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_logs"):
        Retention(max_logs=0)
    with pytest.raises(ValueError, match="limit"):
        LogQuery(limit=0)
    with pytest.raises(ValueError, match="level"):
        LogQuery(level="verbose")
    with pytest.raises(ValueError, match="buffer"):
        TelemetryOptions(buffer=0)


def test_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    first = SqliteTelemetryStore(tmp_path / "t.db")
    first.write([record(0)], [span(0)], now=T0)
    first.close()
    second = SqliteTelemetryStore(tmp_path / "t.db")
    second.write([record(1)], [], now=T0 + 1)
    assert [(line.seq, line.message) for line in second.logs(LogQuery())] == [
        (1, "line 0"),
        (2, "line 1"),
    ]
    assert second.spans(SpanQuery(trace_id="t1"))[0] == span(0)
    second.close()


def test_an_unwritable_telemetry_file_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from motet import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="telemetry database"):
        SqliteTelemetryStore(blocker / "sub" / "telemetry.db")


def pipeline() -> list[Any]:
    async def ingest(request: Any, ctx: Any) -> Any:
        ctx.logger.info("ingested")
        await ctx.emit("work", {"n": 1})
        return {"status": 202, "body": {}}

    async def work(data: Any, ctx: Any) -> None:
        ctx.logger.info("worked", n=data["n"])

    return [
        http_step("Ingest", "POST", "/in", ingest, enqueues=["work"]),
        queue_step("Work", "work", work),
    ]


async def test_traces_and_logs_survive_a_restart_beside_the_sqlite_backend(tmp_path: Path) -> None:
    # Real time: SQLite works in threads, and autojump would leap while they work.
    db = tmp_path / "data" / "motet.db"
    options = TelemetryOptions()  # default store: telemetry.db beside the backend's file
    async with open_observed(pipeline(), backend=SqliteBackend(db), telemetry=options) as app:
        response = await app.http.post("/in", json={})
        assert response.status_code == 202
        trace_id = response.headers["x-trace-id"]
        await app.settle()
    assert (tmp_path / "data" / "telemetry.db").is_file()
    async with open_observed(pipeline(), backend=SqliteBackend(db), telemetry=options) as app:
        rows, logs = await app.telemetry.trace(trace_id)
        listed = await app.http.get(f"/_motet/traces/{trace_id}")
    assert [r.span.name for r in rows] == ["POST /in", "Ingest", "Work"]
    assert [line.message for line in logs] == ["ingested", "worked"]
    assert listed.status_code == 200 and len(listed.json()["spans"]) == 3


async def test_a_full_buffer_drops_telemetry_and_counts_it(autojump_clock: Any) -> None:
    async def chatty(data: Any, ctx: Any) -> None:
        for i in range(50):
            ctx.logger.info("chatter", i=i)

    done: list[int] = []

    async def after(data: Any, ctx: Any) -> None:
        done.append(1)

    steps = [queue_step("Chatty", "talk", chatty), queue_step("After", "talk", after)]
    async with open_observed(
        steps, telemetry=TelemetryOptions(store="memory", buffer=10, flush_interval=60)
    ) as app:
        assert app.runtime.publisher is not None
        await app.runtime.publisher.publish("talk", {}, trace_id="a" * 32, source="test")
        await app.settle()
        stats = app.telemetry.statistics()
        metrics = (await app.http.get("/metrics")).text
        stored = await app.telemetry.logs(LogQuery(limit=1000))
    assert done == [1]  # handlers ran regardless
    assert stats["dropped_logs"] + stats["dropped_spans"] > 0 and stats["buffered"] == 0
    assert len(stored) <= 10
    assert f'motet_telemetry_dropped_total{{kind="log"}} {stats["dropped_logs"]}' in metrics


def test_the_default_store_follows_the_backend(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from motet.observe._telemetry import open_store
    from motet.project import ProjectConfig

    def runtime(backend: Any) -> Any:
        return SimpleNamespace(backend=backend, project=ProjectConfig(root=tmp_path))

    options = TelemetryOptions()
    memory = open_store(options, runtime(SimpleNamespace(name="memory")))
    beside = open_store(options, runtime(SqliteBackend(tmp_path / "db" / "motet.db")))
    redis = open_store(options, runtime(SimpleNamespace(name="redis")))
    chosen = open_store(
        TelemetryOptions(store=tmp_path / "x.db"), runtime(SimpleNamespace(name="memory"))
    )
    assert isinstance(memory, MemoryTelemetryStore)
    assert isinstance(beside, SqliteTelemetryStore)
    assert beside.path == tmp_path / "db" / "telemetry.db"
    # Redis spans hosts; telemetry stays in a local file per host.
    assert isinstance(redis, SqliteTelemetryStore)
    assert redis.path == tmp_path / ".motet" / "telemetry.db"
    assert isinstance(chosen, SqliteTelemetryStore) and chosen.path == tmp_path / "x.db"
    for store in (memory, beside, redis, chosen):
        store.close()


class BrokenStore(MemoryTelemetryStore):
    """Writes fail (a full disk); reads fail once asked to."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_fail = False

    def write(self, logs: Any, spans: Any, *, now: float) -> None:
        raise OSError("disk full")

    def logs(self, query: LogQuery) -> Any:
        if self.reads_fail:
            raise OSError("disk gone")
        return super().logs(query)


async def test_a_failing_store_never_stops_the_runtime(autojump_clock: Any) -> None:
    store = BrokenStore()
    seen: list[str] = []
    async with open_observed(pipeline(), telemetry=TelemetryOptions(store=store)) as app:
        assert app.runtime.hub is not None
        app.runtime.hub.add_sink(lambda record: seen.append(record.message))
        for _ in range(2):
            assert (await app.http.post("/in", json={})).status_code == 202
            await app.settle()
        metrics = (await app.http.get("/metrics")).text
        store.reads_fail = True
        failed = await app.http.get("/_motet/logs")
    assert seen.count("worked") == 2  # handlers ran on
    assert seen.count("telemetry: writing logs and spans failed; they were dropped") == 1
    assert "motet_telemetry_write_errors_total 2" in metrics
    assert failed.status_code == 500 and "error id" in failed.json()["detail"]
    assert any(m.startswith("operator endpoint /_motet/logs failed: OSError") for m in seen)


@settings(max_examples=300, deadline=None)
@given(SPANS)
def test_a_stored_span_body_is_the_converters_json_of_the_span(s: Span) -> None:
    """The SQLite store encodes spans by hand (it is on every run's path): the text must be
    the converter's, byte for byte, and read back to the same span."""
    body = span_json(s)
    assert body == json.dumps(unstructure(s))
    assert structure(json.loads(body), Span) == s


_GROUPED = (
    "SELECT trace_id FROM spans{} GROUP BY trace_id ORDER BY MIN(started) DESC, trace_id DESC "
    "LIMIT ?"
)


@settings(max_examples=200, deadline=None)
@given(
    traces=st.lists(
        st.lists(  # one trace: its spans' (step, start)
            st.tuples(st.sampled_from("ABC"), st.integers(0, 40).map(float)), min_size=1, max_size=4
        ),
        max_size=30,
    ),
    step=st.none() | st.sampled_from("AB"),
    since=st.none() | st.integers(0, 40).map(float),
    until=st.none() | st.integers(0, 40).map(float),
    limit=st.integers(1, 12),
)
def test_the_latest_traces_are_those_grouping_every_span_would_pick(
    traces: list[list[tuple[str, float]]],
    step: str | None,
    since: float | None,
    until: float | None,
    limit: int,
) -> None:
    """The trace list reads spans newest first and stops early instead of grouping the whole
    table: it must pick the traces, in the order, that the grouping query picks (ties on the
    first start broken by trace id); starts are small integers, so ties are common, and
    traces interleave in time."""
    store = SqliteTelemetryStore(":memory:")
    spans = [
        Span(f"{t}.{k}", f"t{t:02}", "handler", "x", T0 + at, 0.0, step=name)
        for t, trace in enumerate(traces)
        for k, (name, at) in enumerate(trace)
    ]
    store.write([], spans[::-1], now=T0)
    query = SpanQuery(
        step=step,
        since=None if since is None else T0 + since,
        until=None if until is None else T0 + until,
        limit=limit,
    )
    clause, args = store._span_where(query)
    expected = [row[0] for row in store._query(_GROUPED.format(clause), [*args, limit])]
    assert store._latest_traces(query) == expected
    assert {t.trace_id for t in store.traces(query)} == set(expected)
