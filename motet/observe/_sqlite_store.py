"""Telemetry in its own SQLite file (by default `.motet/telemetry.db`, beside the backend's
database), so traces and logs survive restarts without touching the queue's file.

One connection, used from worker threads one call at a time (a lock serializes them); WAL
mode, so several instances of a project can share the file. Retention runs after each
batch: rows older than `max_age`, then the oldest beyond `max_logs` / `max_spans`.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
import threading
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any

from .._convert import structure
from .._errors import BackendUnavailable
from .._logging import LEVELS, LogRecord
from ..backends._sqlite_schema import switch_to_wal
from ._records import (
    LogQuery,
    Span,
    SpanQuery,
    SpanRow,
    StoredLog,
    TraceSummary,
    span_row,
    summarize,
)
from ._store import Retention

# SQLite's page cache for this connection, KiB (its default is 2000 KiB). Telemetry appends
# rows and reads them only when the console asks, so a full default cache would be resident
# memory kept for nothing: it filled within the first few thousand requests and stayed
# (bench/bench_rss.py). Pages it does not hold are read from the OS page cache.
CACHE_KIB = 256

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, level TEXT NOT NULL,
    level_no INTEGER NOT NULL, message TEXT NOT NULL, step TEXT, trace_id TEXT,
    message_id TEXT, attempt INTEGER, fields TEXT NOT NULL, traceback TEXT);
CREATE INDEX IF NOT EXISTS logs_time ON logs(time);
CREATE INDEX IF NOT EXISTS logs_trace ON logs(trace_id);
CREATE INDEX IF NOT EXISTS logs_step ON logs(step, seq);
CREATE TABLE IF NOT EXISTS spans (
    seq INTEGER PRIMARY KEY, span_id TEXT NOT NULL, trace_id TEXT NOT NULL,
    step TEXT, started REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE INDEX IF NOT EXISTS spans_started ON spans(started);
CREATE INDEX IF NOT EXISTS spans_step ON spans(step, started);
"""
# A span's `seq` only orders the count limit (nothing reads it as a cursor, as a log line's
# is), so it is a plain rowid: one past the largest, never reused while the newest row is
# kept, which retention always keeps. AUTOINCREMENT would also update sqlite_sequence on
# every insert (about 0.3 us per span). Files made before keep their AUTOINCREMENT table.
_LOG_COLUMNS = "seq, time, level, message, step, trace_id, message_id, attempt, fields, traceback"


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file written by an older motet up to this schema (columns only ever added)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(logs)")}
    if "traceback" not in columns:
        try:
            conn.execute("ALTER TABLE logs ADD COLUMN traceback TEXT")
        except sqlite3.OperationalError as exc:  # another instance added it meanwhile
            if "duplicate column" not in str(exc):
                raise


_CORRUPT = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _move_aside(path: Path) -> Path:
    """Rename a corrupt database (and its -wal / -shm files) to the first free
    `<name>.corrupt[.N]`; returns the new path of the database file."""
    n = 0
    while True:
        aside = path.with_name(f"{path.name}.corrupt" + (f".{n}" if n else ""))
        if not aside.exists():
            break
        n += 1
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if type(value) is int or (type(value) is float and value - value == 0):  # not inf, nan
        return repr(value)
    return json.dumps(value)  # inf, nan, bool, subclasses: as json.dumps writes them


def span_json(s: Span) -> str:
    """A span's stored body: the same text as `json.dumps(unstructure(span))` (every field,
    in declaration order, json's default separators and ASCII escaping). See `row_json`,
    which writes it."""
    return row_json(span_row(s))


def row_json(r: SpanRow) -> str:
    """The stored body of the span `Span(*r)`, assembled from the row's fields with the json
    module's own string escaper. It runs on the writer thread for every span and costs under
    a third of what the converter and json.dumps took (bench/bench_telemetry.py); optional
    fields are tested inline rather than through `_text` and `_number` (most are None). A
    field added to `Span`, `Emitted` or `StateWriteInfo` must be added here too:
    tests/observe/test_store.py compares both encodings on random spans."""
    (span_id, trace_id, kind, name, started, duration, outcome, step, trigger, topic) = r[:10]
    (message_id, attempt, error, status, emitted, state_writes, traceback) = r[10:]
    emits = (
        ", ".join([f'{{"topic": {_quote(e.topic)}, "id": {_quote(e.id)}}}' for e in emitted])
        if emitted
        else ""
    )
    writes = (
        ", ".join(
            [
                f'{{"namespace": {_quote(w.namespace)}, "key": {_quote(w.key)}, '
                f'"event": {_quote(w.event)}}}'
                for w in state_writes
            ]
        )
        if state_writes
        else ""
    )
    return (
        f'{{"span_id": {_quote(span_id)}, "trace_id": {_quote(trace_id)}, '
        f'"kind": {_quote(kind)}, "name": {_quote(name)}, "started": {_number(started)}, '
        f'"duration": {_number(duration)}, "outcome": {_quote(outcome)}, '
        f'"step": {"null" if step is None else _quote(step)}, '
        f'"trigger": {"null" if trigger is None else _quote(trigger)}, '
        f'"topic": {"null" if topic is None else _quote(topic)}, '
        f'"message_id": {"null" if message_id is None else _quote(message_id)}, '
        f'"attempt": {"null" if attempt is None else _number(attempt)}, '
        f'"error": {"null" if error is None else _quote(error)}, '
        f'"status": {"null" if status is None else _number(status)}, "emitted": [{emits}], '
        f'"state_writes": [{writes}], '
        f'"traceback": {"null" if traceback is None else _quote(traceback)}}}'
    )


class SqliteTelemetryStore:
    def __init__(
        self, path: Path | str, retention: Retention | None = None, *, busy_timeout: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.retention = retention or Retention()
        self._lock = threading.Lock()
        # Where a corrupt file found at this path was moved (the runtime logs a warning).
        self.moved_aside: Path | None = None
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = self._open(busy_timeout)
            except sqlite3.DatabaseError as exc:
                if exc.sqlite_errorcode not in _CORRUPT or str(self.path) == ":memory:":
                    raise
                # Telemetry is a record for people, not state motet needs: a corrupt file
                # must not block a start. It is kept, renamed, for whoever wants to look.
                self.moved_aside = _move_aside(self.path)
                self._conn = self._open(busy_timeout)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"cannot open the telemetry database {self.path}: {exc}; check that the "
                "folder is writable, or turn telemetry off (open_runtime(..., telemetry=False))",
                cause=exc,
            ) from exc

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        try:
            switch_to_wal(conn, busy_timeout=busy_timeout)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # The schema is made under the write lock, taken first: instances opening a new
            # file at once then wait their turn (busy_timeout). Statement by statement in
            # autocommit, one could read the schema, lose the race to another's CREATE and
            # get "database is locked" at once: SQLite cannot wait out a stale read.
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            _migrate(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def __repr__(self) -> str:
        return f"SqliteTelemetryStore({str(self.path)!r})"

    def write(self, logs: Sequence[LogRecord], spans: Sequence[Span], *, now: float) -> None:
        self.write_rows(logs, [span_row(s) for s in spans], now=now)

    def write_rows(
        self, logs: Sequence[LogRecord], spans: Sequence[SpanRow], *, now: float
    ) -> None:
        """`write`, for spans as the telemetry observer buffers them (`SpanRow`s)."""
        log_rows = [
            (
                r.time,
                r.level,
                LEVELS[r.level],
                r.message,
                r.step,
                r.trace_id,
                r.message_id,
                r.attempt,
                json.dumps(dict(r.fields), default=repr) if r.fields else "{}",
                r.traceback,
            )
            for r in logs
        ]
        span_rows = [(r[0], r[1], r[7], r[4], row_json(r)) for r in spans]
        cutoff = now - self.retention.max_age
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO logs (time, level, level_no, message, step, trace_id, "
                    "message_id, attempt, fields, traceback) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    log_rows,
                )
                conn.executemany(
                    "INSERT INTO spans (span_id, trace_id, step, started, body) VALUES (?,?,?,?,?)",
                    span_rows,
                )
                conn.execute("DELETE FROM logs WHERE time < ?", (cutoff,))
                conn.execute("DELETE FROM spans WHERE started < ?", (cutoff,))
                conn.execute(
                    "DELETE FROM logs WHERE seq <= (SELECT MAX(seq) FROM logs) - ?",
                    (self.retention.max_logs,),
                )
                conn.execute(
                    "DELETE FROM spans WHERE seq <= (SELECT MAX(seq) FROM spans) - ?",
                    (self.retention.max_spans,),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def logs(self, query: LogQuery) -> list[StoredLog]:
        where, args = [], []
        for column, op, value in (
            ("seq", ">", query.after),
            ("trace_id", "=", query.trace_id),
            ("step", "=", query.step),
            ("time", ">=", query.since),
            ("time", "<", query.until),
            ("level_no", ">=", LEVELS[query.level] if query.level else None),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        if query.text:
            where.append("instr(lower(message), ?) > 0")
            args.append(query.text.lower())
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        order = "ASC" if query.after is not None else "DESC"
        rows = self._query(
            f"SELECT {_LOG_COLUMNS} FROM logs{clause} ORDER BY seq {order} LIMIT ?",
            [*args, query.limit],
        )
        if query.after is None:
            rows.reverse()
        return [
            StoredLog(
                seq=r[0],
                time=r[1],
                level=r[2],
                message=r[3],
                step=r[4],
                trace_id=r[5],
                message_id=r[6],
                attempt=r[7],
                fields=json.loads(r[8]),
                traceback=r[9],
            )
            for r in rows
        ]

    @staticmethod
    def _span_where(query: SpanQuery) -> tuple[str, list[Any]]:
        where, args = [], []
        for column, op, value in (
            ("trace_id", "=", query.trace_id),
            ("step", "=", query.step),
            ("started", ">=", query.since),
            ("started", "<", query.until),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        return (f" WHERE {' AND '.join(where)}" if where else ""), args

    def spans(self, query: SpanQuery) -> list[Span]:
        clause, args = self._span_where(query)
        rows = self._query(
            f"SELECT body FROM spans{clause} ORDER BY started DESC LIMIT ?", [*args, query.limit]
        )
        return [structure(json.loads(r[0]), Span) for r in reversed(rows)]

    def _latest_traces(self, query: SpanQuery) -> list[str]:
        """The ids of the `query.limit` traces whose first matching span started last, latest
        first: what `GROUP BY trace_id ORDER BY MIN(started) DESC LIMIT n` selects, without
        grouping the whole table (a quarter of a second at 100k spans, and the console's
        trace list asks every two seconds). Spans are read newest first; each trace met is
        given its first start by its index; the scan stops once it reads a start earlier
        than the n-th latest first start, since a trace not met yet started before that."""
        clause, args = self._span_where(query)
        also = clause.replace(" WHERE ", " AND ", 1)
        # By the trace's index: SQLite would otherwise take the step's for a step query.
        first_of = f"SELECT MIN(started) FROM spans INDEXED BY spans_trace WHERE trace_id = ?{also}"
        best: list[tuple[float, str]] = []  # a min-heap of (first start, trace id)
        met: set[str] = set()
        with self._lock:
            conn = self._conn
            newest_first = conn.execute(
                f"SELECT trace_id, started FROM spans{clause} ORDER BY started DESC", args
            )
            for trace_id, started in newest_first:
                if len(best) == query.limit and started < best[0][0]:
                    break
                if trace_id in met:
                    continue
                met.add(trace_id)
                (first,) = conn.execute(first_of, [trace_id, *args]).fetchone()
                if len(best) < query.limit:
                    heapq.heappush(best, (first, trace_id))
                elif (first, trace_id) > best[0]:
                    heapq.heapreplace(best, (first, trace_id))
            newest_first.close()
        return [trace_id for _, trace_id in sorted(best, reverse=True)]

    def traces(self, query: SpanQuery) -> list[TraceSummary]:
        ids = self._latest_traces(query) if query.limit > 0 else []
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        by_trace: dict[str, list[Span]] = {}
        for (body,) in self._query(f"SELECT body FROM spans WHERE trace_id IN ({marks})", ids):
            span = structure(json.loads(body), Span)
            by_trace.setdefault(span.trace_id, []).append(span)
        summaries = [summarize(t, spans) for t, spans in by_trace.items()]
        summaries.sort(key=lambda s: s.started, reverse=True)
        return summaries

    def close(self) -> None:
        with self._lock:
            self._conn.close()
