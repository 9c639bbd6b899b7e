"""How the Redis backend writes envelopes and settled records as text: what it reads back is
what it wrote, for every field, and text it did not write is refused rather than misread."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from motet._envelope import Envelope
from motet._errors import BackendError
from motet._status import Settlement
from motet.backends import _redis_codec as codec
from motet.backends._redis_status import record_text

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
maybe_time = st.none() | st.floats(min_value=0, max_value=4e9)


@given(
    data=json_values,
    group=st.none() | st.text(min_size=1),
    priority=st.integers(-100, 100),
    created=st.floats(min_value=0, max_value=4e9),
    not_before=maybe_time,
    expires=maybe_time,
    key=st.none() | st.text(min_size=1),
)
def test_an_envelope_reads_back_as_it_was_written(
    data: object,
    group: str | None,
    priority: int,
    created: float,
    not_before: float | None,
    expires: float | None,
    key: str | None,
) -> None:
    envelope = Envelope(
        "topic", data, "trace", "id-1", group, priority, created, not_before, expires, key
    )
    assert codec.decode_envelope(codec.encode_envelope(envelope)) == envelope


@pytest.mark.parametrize(
    "text",
    ["", "nope", "{}", '"text"', "[1, 2]", '["t",1,"tr","id",null,0,1.5] and more', "[1,2,3"],
)
def test_text_that_is_no_stored_envelope_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an envelope stored by the Redis backend"):
        codec.decode_envelope(text)


@given(
    attempts=st.integers(1, 100),
    started=maybe_time,
    finished=st.floats(min_value=0, max_value=4e9),
    keep=st.floats(min_value=0, max_value=4e9),
    result=st.none() | st.text(),
    note=st.none() | st.text(),
    error=st.none() | st.text(),
    enqueued=maybe_time,
)
def test_a_settled_record_is_the_json_of_its_fields(
    attempts: int,
    started: float | None,
    finished: float,
    keep: float,
    result: str | None,
    note: str | None,
    error: str | None,
    enqueued: float | None,
) -> None:
    settlement = Settlement("done", attempts, started, finished, keep, result, note, error)
    fields = [*settlement[:4], result, note, error, enqueued, keep]
    text = record_text(settlement, enqueued)
    assert text == json.dumps(fields, separators=(",", ":"))
    assert json.loads(text) == fields


@given(value=json_values | st.floats() | st.lists(st.floats(), max_size=3))
def test_encode_json_writes_what_json_dumps_writes(value: object) -> None:
    # The C encoder made once at import writes the text a JSONEncoder made per call does
    # (NaN and infinities included, non-ASCII as is; a lone surrogate is escaped instead).
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        expected.encode()
    except UnicodeEncodeError:
        expected = json.dumps(value, separators=(",", ":"))
    assert codec.encode_json(value, where="w") == expected  # type: ignore[arg-type]


def test_a_refused_value_leaves_no_trace_on_the_next_encode() -> None:
    # The shared encoder marks the containers it is inside (that is how it finds a value
    # that contains itself); an encode that fails midway must not leave them marked, or
    # encoding them again, once fixed, would be refused as "Circular reference".
    inner: dict[str, object] = {"a": [2], "bad": object()}
    outer: dict[str, object] = {"x": [1, inner]}
    with pytest.raises(BackendError, match="not JSON serializable"):
        codec.encode_json(outer, where="w")  # type: ignore[arg-type]
    del inner["bad"]
    assert codec.encode_json(outer, where="w") == '{"x":[1,{"a":[2]}]}'  # type: ignore[arg-type]
    outer["self"] = outer
    with pytest.raises(BackendError, match="Circular reference"):
        codec.encode_json(outer, where="w")  # type: ignore[arg-type]
    del outer["self"]
    assert codec.encode_json(outer, where="w") == '{"x":[1,{"a":[2]}]}'  # type: ignore[arg-type]
