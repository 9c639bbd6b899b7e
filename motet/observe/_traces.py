"""Trace assembly: who is whose parent, and the waterfall order.

Parents are derived, not stored, because the facts arrive in any order (a consumer can
finish before the handler that emitted its message does):

- a handler span of an HTTP trigger: the gateway's request span of the same trace whose
  time covers it (the tightest one);
- a handler span of a delivered message: the span that emitted that message id (every
  attempt, re-drives included); for a state trigger, whose event the backend published,
  the latest earlier span that wrote that namespace;
- an `emit` span (published outside a handler, e.g. the dead-letter-queue hand-off): the
  latest earlier span of the emitting step.

Anything else is a root (an HTTP request, a cron tick's handler, a test's emit).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import attrs

from .._convert import wire
from .._envelope import STATE_TOPIC_PREFIX
from ._records import Span


@attrs.frozen
class TraceRow:
    span: Span = attrs.field(metadata=wire(flatten=True))  # its keys beside the two below
    parent_id: str | None
    depth: int


def _order(span: Span) -> tuple[float, int]:
    # An HTTP span starts with (or a hair before) its handler: put it first on ties.
    return (span.started, 0 if span.kind == "http" else 1)


def parents(spans: Sequence[Span]) -> dict[str, str | None]:
    """span id -> parent span id (None for roots), for the spans of one trace. Linear in the
    spans but for a binary search each: a trace holds up to `TRACE_SPAN_LIMIT` of them."""
    emitter: dict[str, Span] = {}
    for span in spans:
        for message in span.emitted:
            emitter.setdefault(message.id, span)
    ordered = sorted(spans, key=_order)
    http = [s for s in ordered if s.kind == "http"]
    writers: dict[str, _Earlier] = {}  # namespace -> the spans that wrote it
    handlers: dict[str, _Earlier] = {}  # step -> its handler spans
    for s in ordered:
        for namespace in {w.namespace for w in s.state_writes}:
            writers.setdefault(namespace, _Earlier()).add(s)
        if s.kind == "handler" and s.step is not None:
            handlers.setdefault(s.step, _Earlier()).add(s)
    out: dict[str, str | None] = {}
    for span in spans:
        out[span.span_id] = _parent(span, http, emitter, writers, handlers)
    return out


class _Earlier:
    """Spans in start order, asked for the latest one that started no later than a span."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.starts: list[float] = []

    def add(self, span: Span) -> None:  # in `_order`: starts never decrease
        self.spans.append(span)
        self.starts.append(span.started)

    def latest(self, span: Span) -> str | None:
        """The id of the last span, in `_order`, that started no later than `span` and is not
        `span` itself."""
        i = bisect.bisect_right(self.starts, span.started) - 1
        while i >= 0 and self.spans[i].span_id == span.span_id:
            i -= 1
        return self.spans[i].span_id if i >= 0 else None


def _parent(
    span: Span,
    http: list[Span],
    emitter: dict[str, Span],
    writers: dict[str, _Earlier],
    handlers: dict[str, _Earlier],
) -> str | None:
    if span.kind == "handler" and span.trigger == "http":
        covering = [
            s for s in http if s.started <= span.started + 1e-6 and span.ended <= s.ended + 1e-6
        ]
        if covering:
            return min(covering, key=lambda s: s.duration).span_id
        return None
    if span.message_id is not None:
        source = emitter.get(span.message_id)
        if source is not None and source.span_id != span.span_id:
            return source.span_id
        if span.topic and span.topic.startswith(STATE_TOPIC_PREFIX):
            wrote = writers.get(span.topic[len(STATE_TOPIC_PREFIX) :])
            return wrote.latest(span) if wrote is not None else None
        return None
    if span.kind == "emit" and span.step is not None:
        ran = handlers.get(span.step)
        return ran.latest(span) if ran is not None else None
    return None


def waterfall(spans: Sequence[Span]) -> list[TraceRow]:
    """The spans of one trace depth-first from each root, siblings by start time."""
    links = parents(spans)
    children: dict[str | None, list[Span]] = {}
    for span in sorted(spans, key=_order):
        parent = links[span.span_id]
        children.setdefault(parent, []).append(span)
    rows: list[TraceRow] = []
    seen: set[str] = set()
    # Depth-first with a stack of its own, not recursion: a step that emits to itself makes
    # a chain as deep as the trace is long (up to `TRACE_SPAN_LIMIT` spans).
    for start in [*children.get(None, ()), *sorted(spans, key=_order)]:
        stack = [(start, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:  # a cycle can only come from corrupt data; show it once
                continue
            seen.add(span.span_id)
            rows.append(TraceRow(span, links[span.span_id], depth))
            stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, ())))
    return rows
