"""The Redis backend finds a message by id, whatever its id, group and payload look like
(FIND reads the id off the envelope's tail in the common case and decodes the envelope
otherwise), however deep in its stream it waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Envelope, QueueOptions, Subscription, new_id, random_id
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
async def backend(nursery: trio.Nursery, clock: WallClock, server: RedisServer) -> RedisBackend:
    started: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix="s" + random_id()[:12]).run, clock
    )
    return started


SUB = Subscription("jobs", "worker", QueueOptions())


@pytest.mark.parametrize(
    ("message_id", "group", "data"),
    [
        # The ids new_id() makes are named, so that every pytest process collects the same.
        pytest.param(new_id(), None, {"n": 1}, id="new-id"),  # the common case: off the tail
        ("m1", None, {"n": 1}),  # short ids are decoded
        ("x" * 30, None, None),
        ("y" * 31, None, None),
        ("z" * 33, None, ["a", None, 1]),
        pytest.param(new_id(), "group-1", {"n": 1}, id="new-id-group"),  # a group: decoded
        pytest.param(  # look-alikes in the data
            new_id(), None, ["tail", None, 5, '",null,0,1]'], id="new-id-look-alikes"
        ),
        ('id-with-"quote', None, {"n": 1}),
        ("ünïcode-id", None, {"n": 1}),
    ],
)
async def test_every_message_is_found_by_its_id(
    backend: RedisBackend, mock_clock: MockClock, message_id: str, group: str | None, data: object
) -> None:
    await backend.declare([SUB])
    sent = Envelope("jobs", data, "t" * 32, id=message_id, group=group, created_at=1.5)
    await backend.publish([sent])
    status = await backend.message_status(message_id)
    assert status is not None, message_id
    assert [(d.state, d.enqueued_at) for d in status.deliveries] == [("queued", 1.5)]
    outcome = await backend.cancel(message_id, keep_until=2e9)
    assert outcome.cancelled == (SUB.key,)


async def test_a_message_deep_in_a_backlog_is_found_over_several_scans(
    backend: RedisBackend, mock_clock: MockClock
) -> None:
    await backend.declare([SUB, Subscription("other", "worker", QueueOptions())])
    await backend.publish([Envelope("other", i, "t") for i in range(10)])
    backlog = [Envelope("jobs", i, "t") for i in range(4500)]
    for start in range(0, len(backlog), 500):
        await backend.publish(backlog[start : start + 500])
    last = backlog[-1]
    status = await backend.message_status(last.id)
    assert status is not None and status.topic == "jobs"
    assert [d.state for d in status.deliveries] == ["queued"]
    outcome = await backend.cancel(last.id, keep_until=2e9)
    assert outcome.cancelled == (SUB.key,)
    assert (await backend.depth())[SUB.key].ready == 4499
