"""A receive whose reply is lost after its script ran in Redis: `RedisLink.call` retries it
with the same op id, and the retry hands out the same deliveries (receipts, attempts), never
strands them for a lease, and never hands out a delivery someone else has since re-leased.

The loss is simulated in-process: the RECEIVE script object is wrapped so that its first
call runs in Redis and then raises coredis's ConnectionError, as a connection cut between
the script and its reply would (tests/redis_instances/test_reply_lost.py does it with a real
cut TCP connection).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Envelope, QueueDepth, QueueOptions, Subscription
from motet.backends import _redis_lua as lua
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def env(topic: str, data: object, group: str | None = None) -> Envelope:
    return Envelope(topic=topic, data=data, trace_id="t", group=group)


async def start(nursery: trio.Nursery, clock: WallClock, url: str, prefix: str) -> RedisBackend:
    backend: RedisBackend = await nursery.start(RedisBackend(url, prefix=prefix).run, clock)
    return backend


def lose_next_reply(
    backend: RedisBackend, meanwhile: Callable[[], Awaitable[None]] | None = None
) -> list[int]:
    """Make the backend's next RECEIVE run in Redis, then (after `meanwhile`) fail as a lost
    reply. Returns a list that counts the script's calls."""
    link = backend._link
    assert link is not None
    real = link.script(lua.RECEIVE)
    calls: list[int] = []
    # RedisLink.call's backoff sleep before the retry runs on trio's clock.
    clock = trio.lowlevel.current_clock()
    assert isinstance(clock, MockClock)
    clock.autojump_threshold = 0.05

    async def cut(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(1)
        reply = await real(keys=keys, args=args)
        if len(calls) == 1:
            if meanwhile is not None:
                await meanwhile()
            raise link.coredis.exceptions.ConnectionError("connection lost (simulated)")
        return reply

    link.scripts[lua.RECEIVE] = cut
    return calls


async def test_a_retried_receive_returns_the_deliveries_its_lost_reply_carried(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    jobs = Subscription("jobs", "worker", QueueOptions(lease=30, max_retries=0))
    backend = await start(nursery, clock, server.url, "lost1")
    await backend.declare([jobs])
    await backend.publish([env("jobs", n) for n in range(3)])
    calls = lose_next_reply(backend)

    got = await backend.receive(jobs, 2)

    assert len(calls) == 2  # the lost call and its retry
    assert [(d.envelope.data, d.attempt) for d in got] == [(0, 1), (1, 1)]
    assert (await backend.depth())[jobs.key] == QueueDepth(ready=1, leased=2)
    await backend.ack(got)  # the receipts are the live ones: the ack takes
    rest = await backend.receive(jobs, 10)
    assert [(d.envelope.data, d.attempt) for d in rest] == [(2, 1)]
    await backend.ack(rest)
    assert (await backend.depth())[jobs.key] == QueueDepth()


async def test_a_retried_fifo_receive_keeps_the_group_blocked_behind_its_head(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    orders = Subscription("orders", "worker", QueueOptions(lease=30, strategy="fifo"))
    backend = await start(nursery, clock, server.url, "lost2")
    await backend.declare([orders])
    await backend.publish([env("orders", n, group="a") for n in range(3)])
    lose_next_reply(backend)

    got = await backend.receive(orders, 10)

    assert [(d.envelope.data, d.attempt) for d in got] == [(0, 1)]
    with trio.move_on_after(1.0):  # nothing else of group a while its head is leased
        assert await backend.receive(orders, 10) == []
    await backend.ack(got)
    after = await backend.receive(orders, 10)
    assert [(d.envelope.data, d.attempt) for d in after] == [(1, 1)]


async def test_a_retry_never_hands_out_a_delivery_someone_else_re_leased_meanwhile(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    jobs = Subscription("jobs", "worker", QueueOptions(lease=30))
    backend = await start(nursery, clock, server.url, "lost3")
    other = await start(nursery, clock, server.url, "lost3")
    await backend.declare([jobs])
    await backend.publish([env("jobs", n) for n in range(2)])
    taken = []

    async def lease_runs_out_and_another_instance_reclaims() -> None:
        mock_clock.jump(31)
        taken.extend(await other.receive(jobs, 1))

    lose_next_reply(backend, lease_runs_out_and_another_instance_reclaims)
    got = await backend.receive(jobs, 1)

    assert [(d.envelope.data, d.attempt) for d in taken] == [(0, 2)]
    # Not message 0 again with its stale attempt 1: the retry received afresh.
    assert [(d.envelope.data, d.attempt) for d in got] == [(1, 1)]
    await other.ack(taken)
    await backend.ack(got)
    assert (await backend.depth())[jobs.key] == QueueDepth()


async def test_what_a_publish_or_receive_remembers_expires_soon_after_the_reconnect_timeout(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    # A mark per publish flush that lived an hour would be 36 million keys at 10k emits/s;
    # a retry after a lost reply comes within reconnect_timeout, so the marks need no more.
    jobs = Subscription("jobs", "worker")
    backend = await start(nursery, clock, server.url, "lost4")
    await backend.declare([jobs])
    await backend.publish([env("jobs", n) for n in range(2)])
    later = Envelope(topic="jobs", data=2, trace_id="t", key="k", not_before=clock.now() + 5)
    await backend.publish([later])  # PUBLISH_LATER (a key, not yet due)
    assert len(await backend.receive(jobs, 10)) == 2
    link = backend._link
    assert link is not None
    keys = [key async for key in link.client.scan_iter(match="lost4:op:*")]
    ttls = [await link.client.ttl(key) for key in keys]
    # One memo per publish flush (plain, later) and one per receive that leased something.
    assert len(keys) == 3
    limit = backend.options.reconnect_timeout + 60
    assert all(limit - 5 < ttl <= limit for ttl in ttls), ttls


async def test_a_publish_retried_after_its_lost_reply_enqueues_its_messages_once(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    jobs = Subscription("jobs", "worker", QueueOptions(max_retries=0))
    backend = await start(nursery, clock, server.url, "lost5")
    await backend.declare([jobs])
    link = backend._link
    assert link is not None
    real = link.script(lua.PUBLISH)
    calls: list[int] = []
    mock_clock.autojump_threshold = 0.05  # RedisLink.call's backoff before the retry

    async def cut(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(1)
        reply = await real(keys=keys, args=args)
        if len(calls) == 1:
            raise link.coredis.exceptions.ConnectionError("connection lost (simulated)")
        return reply

    link.scripts[lua.PUBLISH] = cut

    await backend.publish([env("jobs", n) for n in range(2)])

    assert len(calls) == 2  # the lost call and its retry, with the same op id
    assert (await backend.depth())[jobs.key] == QueueDepth(ready=2)
    got = await backend.receive(jobs, 10)
    assert [d.envelope.data for d in got] == [0, 1]
    await backend.ack(got)
    assert (await backend.depth())[jobs.key] == QueueDepth()


async def test_receipts_and_attempts_read_alike_on_every_receive_path(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer
) -> None:
    # RECEIVE replies with the attempt as an integer (the client builds the receipt from it
    # without an int()): a first delivery (the stream sweep), a redelivery after the lease
    # expired (HINCRBY) and a retried call's replay (the memo's text) all read as int, and
    # each receipt settles only its own delivery.
    jobs = Subscription("jobs", "worker", QueueOptions(lease=30, max_retries=5))
    backend = await start(nursery, clock, server.url, "paths")
    await backend.declare([jobs])
    await backend.publish([env("jobs", 0)])
    [first] = await backend.receive(jobs, 10)
    assert type(first.attempt) is int and first.attempt == 1
    ref = first.receipt.rpartition("/")[0]
    assert first.receipt == f"{ref}/1"

    mock_clock.jump(31)  # the lease expires unacked
    lose_next_reply(backend)  # and the receive that re-leases it replays from its memo
    [again] = await backend.receive(jobs, 10)
    assert type(again.attempt) is int and again.attempt == 2
    assert again.receipt == f"{ref}/2"

    await backend.ack([first])  # stale: settles nothing
    assert (await backend.depth())[jobs.key] == QueueDepth(leased=1)
    await backend.ack([again])
    assert (await backend.depth())[jobs.key] == QueueDepth()
