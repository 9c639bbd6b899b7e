"""Where telemetry lives: the `TelemetryStore` seam, retention limits, the memory store.

Stores are synchronous: the recorder calls them from a worker thread (never from a
handler's task), in batches. A store keeps at most `Retention.max_logs` log lines and
`max_spans` spans, none older than `max_age` seconds (by the runtime's clock, passed in as
`now`, so tests prune on virtual time).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import attrs

from .._logging import LEVELS, LogRecord
from .._validators import Check, count, is_number
from ._records import LogQuery, Span, SpanQuery, StoredLog, TraceSummary, summarize

_AT_LEAST_A_SECOND = Check(
    "a number of seconds >= 1", lambda value: bool(value >= 1), "a number of seconds", is_number
)


@attrs.frozen
class Retention:
    max_logs: int = attrs.field(default=100_000, validator=count())
    max_spans: int = attrs.field(default=100_000, validator=count())
    max_age: float = attrs.field(default=7 * 86_400.0, validator=_AT_LEAST_A_SECOND)


class TelemetryStore(Protocol):
    def write(self, logs: Sequence[LogRecord], spans: Sequence[Span], *, now: float) -> None:
        """Store a batch, then apply the retention limits as of `now` (epoch seconds)."""
        ...

    def logs(self, query: LogQuery) -> list[StoredLog]:
        """Matching lines, oldest first (see LogQuery for the cursor)."""
        ...

    def spans(self, query: SpanQuery) -> list[Span]:
        """Matching spans, earliest start first."""
        ...

    def traces(self, query: SpanQuery) -> list[TraceSummary]:
        """Traces with a span matching the query (step, time), most recent first."""
        ...

    def close(self) -> None: ...


def stored(seq: int, record: LogRecord) -> StoredLog:
    return StoredLog(
        seq=seq,
        time=record.time,
        level=record.level,
        message=record.message,
        step=record.step,
        trace_id=record.trace_id,
        message_id=record.message_id,
        attempt=record.attempt,
        fields=record.fields,
        traceback=record.traceback,
    )


def log_matches(line: StoredLog, query: LogQuery) -> bool:
    if query.after is not None and line.seq <= query.after:
        return False
    if query.trace_id is not None and line.trace_id != query.trace_id:
        return False
    if query.step is not None and line.step != query.step:
        return False
    if query.level is not None and LEVELS[line.level] < LEVELS[query.level]:
        return False
    if query.text and query.text.lower() not in line.message.lower():
        return False
    if query.since is not None and line.time < query.since:
        return False
    return query.until is None or line.time < query.until


def span_matches(span: Span, query: SpanQuery) -> bool:
    if query.trace_id is not None and span.trace_id != query.trace_id:
        return False
    if query.step is not None and span.step != query.step:
        return False
    if query.since is not None and span.started < query.since:
        return False
    return query.until is None or span.started < query.until


class MemoryTelemetryStore:
    """The in-process store: tests, the memory backend, throwaway runs."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self._logs: deque[StoredLog] = deque()
        self._spans: deque[Span] = deque()
        self._seq = 0
        self._lock = threading.Lock()  # writes come from a worker thread, reads from another

    def write(self, logs: Sequence[LogRecord], spans: Sequence[Span], *, now: float) -> None:
        with self._lock:
            for record in logs:
                self._seq += 1
                self._logs.append(stored(self._seq, record))
            self._spans.extend(spans)
            self._prune(now)

    def _prune(self, now: float) -> None:
        cutoff = now - self.retention.max_age
        while len(self._logs) > self.retention.max_logs:
            self._logs.popleft()
        while self._logs and self._logs[0].time < cutoff:
            self._logs.popleft()
        while len(self._spans) > self.retention.max_spans:
            self._spans.popleft()
        # Spans arrive when they end, so start times are only roughly ordered: an old span
        # behind a younger one waits for the next prune (a bound, not an exact cut).
        while self._spans and self._spans[0].started < cutoff:
            self._spans.popleft()

    def logs(self, query: LogQuery) -> list[StoredLog]:
        with self._lock:
            found = [line for line in self._logs if log_matches(line, query)]
        return found[: query.limit] if query.after is not None else found[-query.limit :]

    def spans(self, query: SpanQuery) -> list[Span]:
        with self._lock:
            found = [s for s in self._spans if span_matches(s, query)]
        found.sort(key=lambda s: s.started)
        return found[-query.limit :]

    def traces(self, query: SpanQuery) -> list[TraceSummary]:
        with self._lock:
            wanted = {s.trace_id for s in self._spans if span_matches(s, query)}
            by_trace: dict[str, list[Span]] = {}
            for span in self._spans:
                if span.trace_id in wanted:
                    by_trace.setdefault(span.trace_id, []).append(span)
        summaries = [summarize(t, spans) for t, spans in by_trace.items()]
        summaries.sort(key=lambda s: s.started, reverse=True)
        return summaries[: query.limit]

    def close(self) -> None:
        pass
