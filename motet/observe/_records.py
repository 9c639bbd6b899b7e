"""What telemetry stores: log lines and spans, as frozen records with a JSON form.

A span is one unit of work in a trace: an HTTP request at the gateway (`kind="http"`), one
handler call (`kind="handler"`), or a message published outside any handler (`kind="emit"`:
a dead-letter-queue hand-off, `motet emit`, a test). Parents are not stored: they follow from
who emitted which message and are assembled when a trace is read (see `_traces`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

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

    def to_json(self) -> dict[str, JSON]:
        return {"topic": self.topic, "id": self.id}


@attrs.frozen
class StateWriteInfo:
    """A state write a span made (the value itself stays in the state store)."""

    namespace: str
    key: str
    event: str  # created | updated | deleted | "" (nothing changed)

    def to_json(self) -> dict[str, JSON]:
        return {"namespace": self.namespace, "key": self.key, "event": self.event}


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

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "span_id": self.span_id,
            "trace_id": self.trace_id,
            "kind": self.kind,
            "name": self.name,
            "started": self.started,
            "duration": self.duration,
            "outcome": self.outcome,
            "step": self.step,
            "trigger": self.trigger,
            "topic": self.topic,
            "message_id": self.message_id,
            "attempt": self.attempt,
            "error": self.error,
            "status": self.status,
            "emitted": [e.to_json() for e in self.emitted],
            "state_writes": [w.to_json() for w in self.state_writes],
            "traceback": self.traceback,
        }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Span:
        return cls(
            span_id=data["span_id"],
            trace_id=data["trace_id"],
            kind=data["kind"],
            name=data["name"],
            started=data["started"],
            duration=data["duration"],
            outcome=data.get("outcome", "ok"),
            step=data.get("step"),
            trigger=data.get("trigger"),
            topic=data.get("topic"),
            message_id=data.get("message_id"),
            attempt=data.get("attempt"),
            error=data.get("error"),
            status=data.get("status"),
            emitted=tuple(Emitted(e["topic"], e["id"]) for e in data.get("emitted") or ()),
            state_writes=tuple(
                StateWriteInfo(w["namespace"], w["key"], w["event"])
                for w in data.get("state_writes") or ()
            ),
            traceback=data.get("traceback"),
        )


@attrs.frozen
class StoredLog:
    """A log line as stored: `seq` orders lines and is the live tail's cursor."""

    seq: int
    time: float
    level: str
    message: str
    step: str | None = None
    trace_id: str | None = None
    message_id: str | None = None
    attempt: int | None = None
    fields: Mapping[str, JSON] = attrs.Factory(dict)
    traceback: str | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "seq": self.seq,
            "time": self.time,
            "level": self.level,
            "msg": self.message,
            "step": self.step,
            "trace_id": self.trace_id,
            "message_id": self.message_id,
            "attempt": self.attempt,
            "fields": dict(self.fields),
            "traceback": self.traceback,
        }


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
    spans: int
    errors: int
    root: str  # the name of the earliest span
    steps: tuple[str, ...]

    @property
    def duration(self) -> float:
        return self.ended - self.started

    def to_json(self) -> dict[str, JSON]:
        return {
            "trace_id": self.trace_id,
            "started": self.started,
            "ended": self.ended,
            "duration": self.duration,
            "spans": self.spans,
            "errors": self.errors,
            "root": self.root,
            "steps": list(self.steps),
        }


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
