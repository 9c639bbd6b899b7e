"""What telemetry stores: log lines and spans, as frozen records with a JSON form.

A span is one unit of work in a trace: an HTTP request at the gateway (`kind="http"`), one
handler call (`kind="handler"`), or a message published outside any handler (`kind="emit"`:
a dead-letter-queue hand-off, `motet emit`, a test). Parents are not stored: they follow from
who emitted which message and are assembled when a trace is read (see `_traces`).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._convert import wire
from .._envelope import JSON
from .._logging import LEVELS
from .._observer import HttpExchange as HttpExchange
from .._validators import Check, is_int, one_of

SPAN_KINDS = ("http", "handler", "emit")


@attrs.frozen
class Emitted:
    """A message a span published."""

    topic: str
    id: str


@attrs.frozen
class StateWriteInfo:
    """A state write a span made (the value itself stays in the state store)."""

    namespace: str
    key: str
    event: str  # created | updated | deleted | "" (nothing changed)


@attrs.frozen
class Span:
    span_id: str
    trace_id: str
    kind: str  # http | handler | emit
    name: str  # "POST /pets", a step name, "emit <topic>"
    started: float  # epoch seconds
    duration: float  # seconds
    outcome: str = "ok"  # ok | error | timeout
    step: str | None = None
    trigger: str | None = None  # http | queue | cron | state (handler spans)
    topic: str | None = None  # the delivered message's topic
    message_id: str | None = None  # the delivered message (handler spans)
    attempt: int | None = None
    error: str | None = None
    status: int | None = None  # HTTP status (http spans)
    emitted: tuple[Emitted, ...] = ()
    state_writes: tuple[StateWriteInfo, ...] = ()
    traceback: str | None = None  # of a failed handler run (user frames in full, capped)

    @property
    def ended(self) -> float:
        return self.started + self.duration


# A span as telemetry buffers it: its fields in `Span`'s order, so `Span(*row)` is the span.
# Observers build rows (a tuple costs a fifth of a frozen 17-field `Span`, and three spans
# are recorded per HTTP request); the SQLite store encodes rows as they are, and a `Span` is
# made only for a store that takes spans and when spans are read back.
SpanRow = tuple[
    str,  # span_id
    str,  # trace_id
    str,  # kind
    str,  # name
    float,  # started
    float,  # duration
    str,  # outcome
    str | None,  # step
    str | None,  # trigger
    str | None,  # topic
    str | None,  # message_id
    int | None,  # attempt
    str | None,  # error
    int | None,  # status
    tuple[Emitted, ...],  # emitted
    tuple[StateWriteInfo, ...],  # state_writes
    str | None,  # traceback
]


def span_row(s: Span) -> SpanRow:
    """A span's fields as a `SpanRow` (the inverse of `Span(*row)`)."""
    return (
        s.span_id,
        s.trace_id,
        s.kind,
        s.name,
        s.started,
        s.duration,
        s.outcome,
        s.step,
        s.trigger,
        s.topic,
        s.message_id,
        s.attempt,
        s.error,
        s.status,
        s.emitted,
        s.state_writes,
        s.traceback,
    )


@attrs.frozen
class StoredLog:
    """A log line as stored: `seq` orders lines and is the live tail's cursor."""

    seq: int
    time: float
    level: str
    message: str = attrs.field(metadata=wire(key="msg"))
    step: str | None = None
    trace_id: str | None = None
    message_id: str | None = None
    attempt: int | None = None
    fields: Mapping[str, JSON] = attrs.Factory(dict)
    traceback: str | None = None


_LIMIT = Check(
    "an integer from 1 to 10000", lambda value: bool(1 <= value <= 10_000), "an integer", is_int
)


@attrs.frozen
class LogQuery:
    """Which log lines to read. `after` is a `seq` cursor (lines after it, oldest first);
    without it the newest `limit` lines come back, oldest first. `level` is a minimum."""

    after: int | None = None
    trace_id: str | None = None
    step: str | None = None
    level: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(one_of(*LEVELS))
    )
    text: str | None = None  # substring of the message
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    limit: int = attrs.field(default=200, validator=_LIMIT)


@attrs.frozen
class SpanQuery:
    """Which spans to read, newest first: by trace, step and time range (`started`)."""

    trace_id: str | None = None
    step: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = attrs.field(default=500, validator=_LIMIT)


@attrs.frozen
class TraceSummary:
    """One line of the trace list."""

    trace_id: str
    started: float
    ended: float
    duration: float = attrs.field(
        init=False, default=attrs.Factory(lambda s: s.ended - s.started, takes_self=True)
    )
    spans: int
    errors: int
    root: str  # the name of the earliest span
    steps: tuple[str, ...]


def summarize(trace_id: str, spans: list[Span]) -> TraceSummary:
    first = min(spans, key=lambda s: (s.started, s.kind != "http"))
    return TraceSummary(
        trace_id=trace_id,
        started=first.started,
        ended=max(s.ended for s in spans),
        spans=len(spans),
        errors=sum(1 for s in spans if s.outcome != "ok"),
        root=first.name,
        steps=tuple(sorted({s.step for s in spans if s.step})),
    )
