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
    """span id -> parent span id (None for roots), for the spans of one trace."""
    emitter: dict[str, Span] = {}
    for span in spans:
        for message in span.emitted:
            emitter.setdefault(message.id, span)
    ordered = sorted(spans, key=_order)
    out: dict[str, str | None] = {}
    for span in spans:
        out[span.span_id] = _parent(span, ordered, emitter)
    return out


def _parent(span: Span, ordered: list[Span], emitter: dict[str, Span]) -> str | None:
    if span.kind == "handler" and span.trigger == "http":
        covering = [
            s
            for s in ordered
            if s.kind == "http"
            and s.started <= span.started + 1e-6
            and span.ended <= s.ended + 1e-6
        ]
        if covering:
            return min(covering, key=lambda s: s.duration).span_id
        return None
    if span.message_id is not None:
        source = emitter.get(span.message_id)
        if source is not None and source.span_id != span.span_id:
            return source.span_id
        if span.topic and span.topic.startswith(STATE_TOPIC_PREFIX):
            namespace = span.topic[len(STATE_TOPIC_PREFIX) :]
            writers = [
                s
                for s in ordered
                if s.span_id != span.span_id
                and s.started <= span.started
                and any(w.namespace == namespace for w in s.state_writes)
            ]
            return writers[-1].span_id if writers else None
        return None
    if span.kind == "emit" and span.step is not None:
        earlier = [
            s
            for s in ordered
            if s.span_id != span.span_id
            and s.kind == "handler"
            and s.step == span.step
            and s.started <= span.started
        ]
        return earlier[-1].span_id if earlier else None
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

    def visit(span: Span, depth: int) -> None:
        if span.span_id in seen:  # a cycle can only come from corrupt data; show it once
            return
        seen.add(span.span_id)
        rows.append(TraceRow(span, links[span.span_id], depth))
        for child in children.get(span.span_id, ()):
            visit(child, depth + 1)

    for root in children.get(None, ()):
        visit(root, 0)
    for span in sorted(spans, key=_order):  # anything left out by a cycle
        if span.span_id not in seen:
            visit(span, 0)
    return rows
