"""The publisher hands a flat payload to the backend without a copy of its own (the backend
copies or encodes every payload before it lets other tasks run); everything else, and
every payload an observer will see, goes through the runtime's JSON conversion."""

from __future__ import annotations

import enum
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Envelope, Subscription
from motet.actors._publisher import Publisher
from motet.backends import MemoryBackend
from motet.steps import make_converter, to_json

SUB = Subscription("orders", "worker")


class Color(str, enum.Enum):  # noqa: UP042 (the older idiom, which str() names)
    RED = "red"


class Counting:
    """The runtime's conversion, counting its calls."""

    def __init__(self) -> None:
        self.converter = make_converter()
        self.calls = 0

    def __call__(self, value: Any) -> Any:
        self.calls += 1
        return to_json(self.converter, value)


async def publisher(
    nursery: trio.Nursery, jsonify: Counting, seen: list[Envelope] | None = None
) -> tuple[Publisher, MemoryBackend]:
    backend: MemoryBackend = await nursery.start(MemoryBackend().run, WallClock(0.0))
    await backend.declare([SUB])

    def observe(envelope: Envelope, source: str | None) -> None:
        assert seen is not None
        seen.append(envelope)

    on_envelope = observe if seen is not None else None
    return Publisher(backend, WallClock(0.0), jsonify, [SUB], on_envelope=on_envelope), backend


async def delivered(backend: MemoryBackend) -> list[Any]:
    return [d.envelope.data for d in await backend.receive(SUB, 100)]


async def test_a_flat_payload_changed_after_the_emit_arrives_as_emitted(
    nursery: trio.Nursery, mock_clock: MockClock
) -> None:
    jsonify = Counting()
    pub, backend = await publisher(nursery, jsonify)
    data: dict[str, Any] = {"n": 1, "s": "x", "b": True, "none": None, "f": 0.5}
    await pub.publish("orders", data, trace_id="t")
    data["n"] = 2  # the emitter keeps using its dict
    data["new"] = "key"
    await pub.publish("orders", data, trace_id="t")
    assert jsonify.calls == 0  # handed over as is: the backend made the only copy
    first, second = await delivered(backend)
    assert first == {"n": 1, "s": "x", "b": True, "none": None, "f": 0.5}
    assert second == {"n": 2, "s": "x", "b": True, "none": None, "f": 0.5, "new": "key"}
    assert [type(v) for v in first.values()] == [int, str, bool, type(None), float]


async def test_an_observer_gets_a_copy_never_the_callers_dict(
    nursery: trio.Nursery, mock_clock: MockClock
) -> None:
    jsonify, seen = Counting(), []
    pub, backend = await publisher(nursery, jsonify, seen)
    data: dict[str, Any] = {"n": 1}
    await pub.publish("orders", data, trace_id="t")
    data["n"] = 2
    [envelope] = seen
    assert envelope.data == {"n": 1} and envelope.data is not data
    assert jsonify.calls == 1
    assert await delivered(backend) == [{"n": 1}]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"c": Color.RED}, {"c": "red"}),  # a str subclass becomes its value
        ({1: "a"}, {"1": "a"}),  # an int key becomes a string
        ({"nested": {"a": (1, 2)}}, {"nested": {"a": [1, 2]}}),
        ([1, 2], [1, 2]),
        ("text", "text"),
    ],
)
async def test_other_payloads_go_through_the_conversion(
    nursery: trio.Nursery, mock_clock: MockClock, payload: Any, expected: Any
) -> None:
    jsonify = Counting()
    pub, backend = await publisher(nursery, jsonify)
    await pub.publish("orders", payload, trace_id="t")
    assert jsonify.calls == 1
    [got] = await delivered(backend)
    assert got == expected
    assert type(next(iter(got.values())) if type(got) is dict else got) is type(
        next(iter(expected.values())) if type(expected) is dict else expected
    )


@pytest.mark.parametrize(
    "bad",
    [{"x": float("nan")}, {"x": 1.0, "y": -float("inf")}, {"x": object()}],
)
async def test_a_payload_with_no_json_form_is_refused_at_the_emit(
    nursery: trio.Nursery, mock_clock: MockClock, bad: Any
) -> None:
    pub, backend = await publisher(nursery, Counting())
    with pytest.raises(TypeError, match="not JSON-serializable"):
        await pub.publish("orders", bad, trace_id="t")
    assert backend.pending_total() == 0
