"""The console's trace layout on large and deep traces: parents found with an index (not a
scan of the trace per span) give what the direct definition gives, and a chain as deep as the
trace is long (a step that emits to itself) is laid out instead of exceeding Python's
recursion limit."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from motet.observe import Span, waterfall
from motet.observe._records import Emitted, StateWriteInfo
from motet.observe._telemetry import TRACE_SPAN_LIMIT
from motet.observe._traces import TraceRow, _order, parents

# -- the direct definitions, as the module docstring states them ------------------------


def reference_parents(spans: Sequence[Span]) -> dict[str, str | None]:
    emitter: dict[str, Span] = {}
    for span in spans:
        for message in span.emitted:
            emitter.setdefault(message.id, span)
    ordered = sorted(spans, key=_order)
    return {span.span_id: _reference_parent(span, ordered, emitter) for span in spans}


def _reference_parent(span: Span, ordered: list[Span], emitter: dict[str, Span]) -> str | None:
    if span.kind == "handler" and span.trigger == "http":
        covering = [
            s
            for s in ordered
            if s.kind == "http"
            and s.started <= span.started + 1e-6
            and span.ended <= s.ended + 1e-6
        ]
        return min(covering, key=lambda s: s.duration).span_id if covering else None
    if span.message_id is not None:
        source = emitter.get(span.message_id)
        if source is not None and source.span_id != span.span_id:
            return source.span_id
        if span.topic and span.topic.startswith("state:"):
            namespace = span.topic[len("state:") :]
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


def reference_waterfall(spans: Sequence[Span]) -> list[TraceRow]:
    links = reference_parents(spans)
    children: dict[str | None, list[Span]] = {}
    for span in sorted(spans, key=_order):
        children.setdefault(links[span.span_id], []).append(span)
    rows: list[TraceRow] = []
    seen: set[str] = set()

    def visit(span: Span, depth: int) -> None:
        if span.span_id in seen:
            return
        seen.add(span.span_id)
        rows.append(TraceRow(span, links[span.span_id], depth))
        for child in children.get(span.span_id, ()):
            visit(child, depth + 1)

    for root in children.get(None, ()):
        visit(root, 0)
    for span in sorted(spans, key=_order):
        if span.span_id not in seen:
            visit(span, 0)
    return rows


# -- random traces, from a small vocabulary so that spans do link ------------------------

_few = st.sampled_from(["a", "b", "c"])
_time = st.integers(0, 8).map(float)  # ties on purpose


@st.composite
def traces(draw: st.DrawFn) -> list[Span]:
    n = draw(st.integers(0, 14))
    spans = []
    for i in range(n):
        kind = draw(st.sampled_from(["http", "handler", "emit"]))
        trigger = draw(st.sampled_from([None, "http", "queue", "state", "cron"]))
        topic = draw(st.none() | _few | _few.map(lambda ns: "state:" + ns))
        spans.append(
            Span(
                # Mostly unique ids, sometimes a duplicate (corrupt data is laid out too).
                span_id=draw(st.sampled_from([f"s{i}", f"s{i}", f"s{i}", "dup"])),
                trace_id="t",
                kind=kind,
                name="n",
                started=draw(_time),
                duration=draw(st.integers(0, 4).map(float)),
                step=draw(st.none() | _few),
                trigger=trigger,
                topic=topic,
                message_id=draw(st.none() | st.sampled_from(["m1", "m2", "m3", "m4"])),
                emitted=tuple(
                    Emitted("x", m)
                    for m in draw(st.lists(st.sampled_from(["m1", "m2", "m3", "m4"]), max_size=2))
                ),
                state_writes=tuple(
                    StateWriteInfo(ns, "k", "updated") for ns in draw(st.lists(_few, max_size=2))
                ),
            )
        )
    return spans


@settings(max_examples=200, deadline=None)
@given(traces())
def test_parents_and_layout_equal_the_direct_definitions(spans: list[Span]) -> None:
    assert parents(spans) == reference_parents(spans)
    assert waterfall(spans) == reference_waterfall(spans)


def _chain(n: int) -> list[Span]:
    """A step that emits to itself n times: each run's span is the parent of the next."""
    return [
        Span(
            f"s{i}",
            "t",
            "handler",
            "Poll",
            float(i),
            0.5,
            step="Poll",
            trigger="queue",
            message_id=f"m{i}",
            emitted=(Emitted("poll", f"m{i + 1}"),),
        )
        for i in range(n)
    ]


def test_a_chain_as_deep_as_the_largest_trace_is_laid_out() -> None:
    assert sys.getrecursionlimit() < TRACE_SPAN_LIMIT  # what made the recursive layout fail
    rows = waterfall(_chain(TRACE_SPAN_LIMIT))
    assert [r.depth for r in rows] == list(range(TRACE_SPAN_LIMIT))
    assert rows[0].parent_id is None and rows[-1].parent_id == f"s{TRACE_SPAN_LIMIT - 2}"


def test_a_chain_of_state_triggers_links_each_run_to_the_latest_writer() -> None:
    spans = [
        Span(
            f"w{i}",
            "t",
            "handler",
            "Watch",
            float(i),
            0.1,
            step="Watch",
            trigger="state",
            topic="state:ns",
            message_id=f"x{i}",
            state_writes=(StateWriteInfo("ns", str(i), "updated"),),
        )
        for i in range(TRACE_SPAN_LIMIT)
    ]
    links = parents(spans)
    assert links["w0"] is None
    assert all(links[f"w{i}"] == f"w{i - 1}" for i in range(1, TRACE_SPAN_LIMIT))
