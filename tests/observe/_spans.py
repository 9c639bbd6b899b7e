"""Random spans for property tests of the span encodings and rows."""

from __future__ import annotations

from hypothesis import strategies as st

from motet.observe import Span
from motet.observe._records import Emitted, StateWriteInfo

_text = st.text(max_size=12)
_maybe_text = st.none() | _text
_number = st.floats(allow_nan=False) | st.sampled_from([float("inf"), float("-inf")])

SPANS = st.builds(
    Span,
    span_id=_text,
    trace_id=_text,
    kind=st.sampled_from(["http", "handler", "emit"]),
    name=_text,
    started=_number,
    duration=_number,
    outcome=st.sampled_from(["ok", "error", "timeout"]),
    step=_maybe_text,
    trigger=_maybe_text,
    topic=_maybe_text,
    message_id=_maybe_text,
    attempt=st.none() | st.integers(),
    error=_maybe_text,
    status=st.none() | st.integers(100, 599),
    emitted=st.lists(st.builds(Emitted, _text, _text), max_size=3).map(tuple),
    state_writes=st.lists(st.builds(StateWriteInfo, _text, _text, _text), max_size=3).map(tuple),
    traceback=_maybe_text,
)
