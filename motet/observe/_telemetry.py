"""Telemetry: an observer of the runtime (`motet.Observer`) that records logs, spans and
metrics, and a part of it (`Part`) that writes logs and spans to a `TelemetryStore` in
batches. It observes from the runtime's start; its writer starts after the step actors, so
what happened before is written then.

    observers (trio thread, synchronous) ──> bounded buffer ──> writer task
                                                                 └─> thread: store.write

Observers never wait: when the buffer is full the record is dropped and counted
(`motet_telemetry_dropped_total`), so telemetry can slow nothing down. The writer wakes
only when something is buffered, waits `flush_interval` to gather a batch, and hands it to
a worker thread. On stop, what is buffered is written before the store closes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._envelope import Envelope, random_id
from .._logging import LogRecord
from .._observer import HttpExchange, Observer, RuntimeView
from .._validators import count, seconds
from ..actors._dispatcher import CURRENT_RUN, HandlerRun
from ..backends._protocol import StateChange
from ._records import (
    Emitted,
    LogQuery,
    Span,
    SpanQuery,
    SpanRow,
    StateWriteInfo,
    StoredLog,
    TraceSummary,
)
from ._runtime_metrics import RuntimeMetrics
from ._sqlite_store import SqliteTelemetryStore
from ._store import MemoryTelemetryStore, Retention, TelemetryStore
from ._traces import TraceRow, waterfall

if TYPE_CHECKING:
    from .._runtime import Runtime

TRACE_SPAN_LIMIT = 5_000
TRACE_LOG_LIMIT = 2_000
WRITE_ERROR_LOG_INTERVAL = 60.0  # s between two log lines about failing telemetry writes


_SECONDS = seconds(allow_inf=True)  # an infinite flush interval was always allowed


@attrs.frozen
class TelemetryOptions:
    """`store`: a TelemetryStore, "memory", a SQLite file path, or None for the default:
    memory beside the memory backend, otherwise `telemetry.db` beside the SQLite backend's
    file (for Redis: `<project root>/.motet/telemetry.db`, a local file per host)."""

    store: TelemetryStore | str | Path | None = None
    retention: Retention = attrs.field(factory=Retention)
    buffer: int = attrs.field(default=10_000, validator=count())  # records held unwritten
    flush_interval: float = attrs.field(default=0.25, validator=_SECONDS)  # s


def in_memory(options: TelemetryOptions, runtime: RuntimeView) -> bool:
    store = options.store
    return (
        store == "memory"
        or isinstance(store, MemoryTelemetryStore)
        or (store is None and runtime.backend.name == "memory")
    )


def open_store(options: TelemetryOptions, runtime: RuntimeView) -> TelemetryStore:
    store = options.store
    if store == "memory":
        return MemoryTelemetryStore(options.retention)
    if isinstance(store, str | Path):
        return SqliteTelemetryStore(store, options.retention)
    if store is not None:
        return store
    if runtime.backend.name == "memory":
        return MemoryTelemetryStore(options.retention)
    backend_path = getattr(runtime.backend, "path", None)
    if isinstance(backend_path, Path) and str(backend_path) != ":memory:":
        return SqliteTelemetryStore(backend_path.parent / "telemetry.db", options.retention)
    return SqliteTelemetryStore(runtime.project.root / ".motet" / "telemetry.db", options.retention)


def _no_clock() -> float:
    raise RuntimeError("Telemetry observes a runtime once the runtime started it")


def write_rows(
    store: TelemetryStore, logs: list[LogRecord], spans: list[SpanRow], now: float
) -> None:
    """Store a batch of buffered records: span rows as they are in the SQLite store
    (`write_rows`, unless a subclass overrides `write`), as `Span`s in any other."""
    if isinstance(store, SqliteTelemetryStore) and type(store).write is SqliteTelemetryStore.write:
        store.write_rows(logs, spans, now=now)
    else:
        store.write(logs, [Span(*row) for row in spans], now=now)


class Telemetry(Observer):
    """Records a runtime's logs, spans and metrics. Give it to the runtime as a part
    (`Runtime(parts=[telemetry, ...])`): it observes from the start, and its writer runs
    after the step actors start and stops, with a last write, before they stop."""

    def __init__(self, options: TelemetryOptions | None = None) -> None:
        self.options = options or TelemetryOptions()
        self.store: TelemetryStore | None = None
        self.metrics: RuntimeMetrics | None = None
        self._runtime: RuntimeView | None = None
        self._now: Callable[[], float] = _no_clock  # the runtime's clock.now, from on_start
        self._logs: list[LogRecord] = []
        self._spans: list[SpanRow] = []  # `Span(*row)` is the span
        self._emits: dict[str, list[Emitted]] = {}  # run id -> messages it published
        self._writes: dict[str, list[StateWriteInfo]] = {}  # run id -> its state writes
        self._steps: set[str] = set()
        self._pending = trio.Event()
        # Records in `_logs` + `_spans`, and whether `_pending` is set: kept here so that
        # buffering a record (three per request) costs no len() and no Event.set() call.
        self._buffered = 0
        self._woken = False
        self._write_lock = trio.Lock()
        self._limiter = trio.CapacityLimiter(1)
        self._last_error_log = float("-inf")

    # -- running ---------------------------------------------------------------------------

    def on_start(self, runtime: RuntimeView) -> None:
        self._runtime = runtime
        self._now = runtime.clock.now
        self._steps = {s.name for s in runtime.steps}
        self.metrics = RuntimeMetrics(list(runtime.subscriptions))

    async def run(
        self,
        runtime: Runtime,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        view = self._runtime
        if view is None:
            raise RuntimeError("Telemetry runs as a part of the runtime it observes")
        if in_memory(self.options, view):
            self.store = open_store(self.options, view)
        else:  # a file to open: not on the trio thread
            self.store = await trio.to_thread.run_sync(open_store, self.options, view)
        aside = getattr(self.store, "moved_aside", None)
        if aside is not None:
            view.logger().warn(
                "telemetry: the database was corrupt; moved it aside and started a new one",
                store=repr(self.store),
                kept_at=str(aside),
            )
        try:
            task_status.started([])  # serves nothing
            while True:
                await self._pending.wait()
                if self._logs or self._spans:
                    await trio.sleep(self.options.flush_interval)
                    await self.flush()
                else:
                    self._pending = trio.Event()
                    self._woken = False
        finally:
            with trio.CancelScope(shield=True):
                await self.flush()
                await self._call(self.store.close)

    async def drain(self) -> None:
        """Nothing to finish before handlers drain: their last spans are still recorded,
        then written when the runtime cancels this part."""

    async def flush(self) -> None:
        """Write everything buffered so far; returns once it is stored."""
        async with self._write_lock:
            # Wake the writer loop if it waits on the event being replaced, so it never
            # sleeps on an event nobody will set.
            woken, self._pending = self._pending, trio.Event()
            woken.set()
            self._woken = False
            logs, self._logs = self._logs, []
            spans, self._spans = self._spans, []
            self._buffered = 0
            if not (logs or spans) or self.store is None or self._runtime is None:
                return
            now = self._runtime.clock.now()
            store = self.store
            try:
                await self._call(write_rows, store, logs, spans, now)
            except Exception as exc:  # telemetry never takes the runtime down with it
                self._write_failed(exc, len(logs), len(spans), now)

    def _write_failed(self, exc: Exception, logs: int, spans: int, now: float) -> None:
        assert self.metrics is not None and self._runtime is not None
        self.metrics.dropped.inc("log", by=logs)
        self.metrics.dropped.inc("span", by=spans)
        self.metrics.write_errors.inc()
        # One line per minute at most: the line itself goes through this same store.
        if now - self._last_error_log >= WRITE_ERROR_LOG_INTERVAL:
            self._last_error_log = now
            self._runtime.logger().error(
                "telemetry: writing logs and spans failed; they were dropped",
                store=repr(self.store),
                error=f"{type(exc).__name__}: {exc}",
                dropped_logs=logs,
                dropped_spans=spans,
            )

    # -- observer hooks (synchronous, never block) ----------------------------------------

    def _buffer(self, kind: str, items: list[Any], item: Any) -> None:
        if self._buffered >= self.options.buffer:
            assert self.metrics is not None
            self.metrics.dropped.inc(kind)
            return
        items.append(item)
        self._buffered += 1
        if not self._woken:
            self._woken = True
            self._pending.set()

    def on_log(self, record: LogRecord) -> None:
        self._buffer("log", self._logs, record)

    # Span ids are random_id()s: nothing indexes them, so they need no time prefix (and
    # skip new_id's clock read); trace and message ids are the ones stores index.

    def on_envelope(self, envelope: Envelope, source: str | None) -> None:
        emitted = Emitted(envelope.topic, envelope.id)
        run = CURRENT_RUN.get()
        if run is not None:
            emits = self._emits.get(run)
            if emits is None:
                self._emits[run] = [emitted]
            else:
                emits.append(emitted)
            return
        step = source if source in self._steps else None
        # A `SpanRow`: Span(span_id, trace_id, kind, name, started, duration, outcome, step,
        # trigger, topic, message_id, attempt, error, status, emitted, state_writes, traceback)
        self._buffer(
            "span",
            self._spans,
            (
                random_id(),
                envelope.trace_id,
                "emit",
                f"emit {envelope.topic}",
                envelope.created_at,
                0.0,
                "ok",
                step,
                None,
                None,
                None,
                None,
                None,
                None,
                (emitted,),
                (),
                None,
            ),
        )

    def on_state(self, change: StateChange) -> None:
        run = CURRENT_RUN.get()
        if run is not None:
            self._writes.setdefault(run, []).append(
                StateWriteInfo(change.namespace, change.key, change.event)
            )

    def on_run(self, run: HandlerRun) -> None:
        assert self.metrics is not None
        self.metrics.on_run(run)
        run_id = run.run_id
        emits = self._emits.pop(run_id, None) if self._emits else None
        writes = self._writes.pop(run_id, None) if self._writes else None
        self._buffer(
            "span",
            self._spans,
            (
                run_id or random_id(),
                run.trace_id,
                "handler",
                run.step,
                run.started,
                run.duration,
                run.outcome,
                run.step,
                run.trigger,
                run.topic,
                run.message_id,
                run.attempt,
                run.error,
                None,
                tuple(emits) if emits else (),
                tuple(writes) if writes else (),
                run.traceback,
            ),
        )

    def on_http(self, exchange: HttpExchange) -> None:
        """Called by the gateway for every request to a step route or an unknown path."""
        assert self.metrics is not None
        self.metrics.on_http(exchange)
        if exchange.trace_id is None:
            return
        duration, status = exchange.duration, exchange.status
        self._buffer(
            "span",
            self._spans,
            (
                random_id(),
                exchange.trace_id,
                "http",
                f"{exchange.method} {exchange.route or exchange.path}",
                self._now() - duration,
                duration,
                "error" if status >= 500 else "ok",
                exchange.step,
                "http",
                None,
                None,
                None,
                None,
                status,
                (),
                (),
                None,
            ),
        )

    # -- reading ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call: the memory store's inline (it never blocks, and under
        MockClock a thread would let virtual time leap while it runs), others in a thread."""
        if isinstance(self.store, MemoryTelemetryStore):
            await trio.lowlevel.checkpoint()
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def logs(self, query: LogQuery) -> list[StoredLog]:
        assert self.store is not None
        result: list[StoredLog] = await self._call(self.store.logs, query)
        return result

    async def spans(self, query: SpanQuery) -> list[Span]:
        assert self.store is not None
        result: list[Span] = await self._call(self.store.spans, query)
        return result

    async def traces(self, query: SpanQuery) -> list[TraceSummary]:
        assert self.store is not None
        result: list[TraceSummary] = await self._call(self.store.traces, query)
        return result

    async def trace(self, trace_id: str) -> tuple[list[TraceRow], list[StoredLog]]:
        """One trace: its spans as a waterfall (parents assembled) and its log lines."""
        spans = await self.spans(SpanQuery(trace_id=trace_id, limit=TRACE_SPAN_LIMIT))
        logs = await self.logs(LogQuery(trace_id=trace_id, limit=TRACE_LOG_LIMIT))
        return waterfall(spans), logs

    async def metrics_text(self) -> str:
        assert self.metrics is not None and self._runtime is not None
        return await self.metrics.render(self._runtime)

    def statistics(self) -> Mapping[str, int]:
        assert self.metrics is not None
        return {
            "buffered": len(self._logs) + len(self._spans),
            "dropped_logs": int(self.metrics.dropped.value("log")),
            "dropped_spans": int(self.metrics.dropped.value("span")),
        }
