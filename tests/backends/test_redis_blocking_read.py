"""An idle receiver of a standard subscription waits in a blocking XREADGROUP: a publish
hands it the message inside Redis, ADOPT records the lease after the handout, and the
orphan sweep re-queues what an instance read but died before recording. Consumer names of
stopped instances are forgotten once they hold nothing.

The contract suite (test_redis.py) already covers the wake-ups: a publish here or on
another instance, a due retry, an expired lease, a re-drive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Envelope, QueueDepth, QueueOptions, Subscription, random_id
from motet.backends import _redis_lua as lua
from motet.backends import _redis_lua_admin as lua_admin
from motet.backends._redis import RedisBackend
from motet.backends._redis_link import RedisOptions
from motet.backends._redis_wire import WireError

from .._redis_server import RedisServer, redis_server

JOBS = Subscription("jobs", "worker", QueueOptions(lease=30, max_retries=2))


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
def prefix() -> str:
    return "b" + random_id()[:12]


async def start(nursery: trio.Nursery, clock: WallClock, url: str, prefix: str) -> RedisBackend:
    backend: RedisBackend = await nursery.start(RedisBackend(url, prefix=prefix).run, clock)
    await backend.declare([JOBS])
    return backend


def env(data: object) -> Envelope:
    return Envelope(topic="jobs", data=data, trace_id="t")


async def command(backend: RedisBackend, *args: Any) -> Any:
    assert backend._link is not None
    return await backend._link.wire.call(*args)


async def wait_until_blocked(backend: RedisBackend, count: int) -> None:
    """Until Redis has `count` clients blocked in XREADGROUP (round trips only, no sleeping).
    Bell watchers block too (in XREAD), and one of an earlier test on this server may linger
    until its own timeout: they are not counted."""
    for _ in range(10_000):
        clients = await command(backend, "CLIENT", "LIST")
        blocked = [
            line
            for line in clients.splitlines()
            if " flags=b " in line and " cmd=xreadgroup " in line
        ]
        if len(blocked) == count:
            return
    raise AssertionError(f"Redis never had {count} clients blocked in XREADGROUP: {clients}")


async def read_as_a_dead_instance(backend: RedisBackend, prefix: str, count: int) -> Any:
    """What a blocking read of another instance gets just before that instance dies: the
    entries are pending in the group for its consumer, with no lease recorded."""
    stream = f"{prefix}:stream:jobs"
    return await command(
        backend, "XREADGROUP", "GROUP", JOBS.key, "dead-host:1:x", "COUNT", count,
        "STREAMS", stream, ">",
    )  # fmt: skip


def intercept_first_served_read(
    backend: RedisBackend, then: Callable[[Any], Awaitable[Any]]
) -> None:
    """The first blocking read that Redis serves (the entries are pending for this consumer
    from then on) gives its reply to `then` instead of to the backend: `then` decides what
    the backend sees (a lost connection, a reply still on its way, ...)."""
    link = backend._link
    assert link is not None
    real_take = link.take_wire
    done = False

    def take_wire() -> Any:
        wire = real_take()
        real_call = wire.call

        async def call(*args: Any) -> Any:
            nonlocal done
            reply = await real_call(*args)
            if args[0] == "XREADGROUP" and reply and not done:
                done = True
                return await then(reply)
            return reply

        wire.call = call  # type: ignore[method-assign]
        return wire

    link.take_wire = take_wire  # type: ignore[method-assign]


def count_receives(backend: RedisBackend) -> list[int]:
    assert backend._link is not None
    real = backend._link.script(lua.RECEIVE)
    calls: list[int] = []

    async def counted(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(1)
        return await real(keys=keys, args=args)

    backend._link.scripts[lua.RECEIVE] = counted
    return calls


async def test_a_waiting_receiver_gets_a_publish_without_another_receive_script(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    consumer = await start(nursery, clock, server.url, prefix)
    producer = await start(nursery, clock, server.url, prefix)
    calls = count_receives(consumer)
    got: list[Any] = []

    async def receive() -> None:
        got.extend(await consumer.receive(JOBS, 10))

    async with trio.open_nursery() as waiting:
        waiting.start_soon(receive)
        await wait_until_blocked(consumer, 1)
        assert len(calls) == 1  # looked once, found nothing, and blocked in Redis
        await producer.publish([env("hello")])
    assert [(d.envelope.data, d.attempt) for d in got] == [("hello", 1)]
    assert len(calls) == 1  # the blocking read itself handed the message out
    await consumer.extend(got, 60)  # waits for ADOPT, like every settle of the delivery
    assert (await consumer.depth())[JOBS.key] == QueueDepth(leased=1)
    await consumer.ack(got)
    assert (await consumer.depth())[JOBS.key] == QueueDepth()


async def test_an_ack_right_after_the_handout_settles_it_for_good(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    consumer = await start(nursery, clock, server.url, prefix)
    producer = await start(nursery, clock, server.url, prefix)
    async with trio.open_nursery() as waiting:
        got: list[Any] = []

        async def receive() -> None:
            deliveries = await consumer.receive(JOBS, 10)
            await consumer.ack(deliveries)  # before ADOPT has run: the ack waits for it
            got.extend(deliveries)

        waiting.start_soon(receive)
        await wait_until_blocked(consumer, 1)
        await producer.publish([env(1), env(2)])
    assert sorted(d.envelope.data for d in got) == [1, 2]
    assert (await consumer.depth())[JOBS.key] == QueueDepth()
    mock_clock.jump(JOBS.options.lease * 3)  # long past any lease: nothing comes back
    mock_clock.autojump_threshold = 0.05  # once everything waits (in Redis), time moves
    with trio.move_on_after(1) as idle:
        await consumer.receive(JOBS, 10)
    assert idle.cancelled_caught


async def test_a_cancelled_wait_loses_nothing(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    consumer = await start(nursery, clock, server.url, prefix)
    mock_clock.autojump_threshold = 0.05  # once everything waits (in Redis), time moves
    with trio.move_on_after(5):  # the runtime stopping: its fetch is cancelled
        await consumer.receive(JOBS, 10)
    await wait_until_blocked(consumer, 0)  # Redis dropped the blocked read with its socket
    await consumer.publish([env("after")])
    [delivery] = await consumer.receive(JOBS, 10)
    assert (delivery.envelope.data, delivery.attempt) == ("after", 1)


async def test_the_sweep_requeues_what_a_dead_instance_read_but_never_recorded(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    backend = await start(nursery, clock, server.url, prefix)
    await backend.publish([env("orphan"), env("kept")])
    # An instance whose blocking read got both, that recorded one lease and then died:
    # the other one is pending in the group with no condition holding it.
    read = await read_as_a_dead_instance(backend, prefix, 2)
    _orphan, (kept_ref, _) = read[0][1]
    await backend._script(
        "record a lease", lua.ADOPT, [JOBS.key, "99999999999999", kept_ref, "", ""]
    )
    assert (await backend.depth())[JOBS.key] == QueueDepth(leased=1)

    # Not yet idle for a lease (Redis's clock): left alone.
    reply = await backend._script("sweep", lua.ORPHANS, [JOBS.key, 60_000, "-", 100, "", "1"])
    assert reply == ["-", 0]
    # Idle long enough (0 ms here, instead of waiting out a real lease): re-queued once,
    # its lost delivery counted as attempt 1.
    reply = await backend._script("sweep", lua.ORPHANS, [JOBS.key, 0, "-", 100, "", "1"])
    assert reply == ["-", 1]
    assert (await backend.depth())[JOBS.key] == QueueDepth(ready=1, leased=1)
    reply = await backend._script("sweep", lua.ORPHANS, [JOBS.key, 0, "-", 100, "", "1"])
    assert reply == ["-", 0]  # the leased one and the re-queued one are held: not orphans
    [again] = await backend.receive(JOBS, 10)
    assert (again.envelope.data, again.attempt) == ("orphan", 2)


async def test_the_sweep_pages_through_a_long_pending_list(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    backend = await start(nursery, clock, server.url, prefix)
    await backend.publish([env(n) for n in range(5)])
    await read_as_a_dead_instance(backend, prefix, 5)
    start_at, found = "-", 0
    for _ in range(3):  # pages of 2: 2 + 2 + 1, then the cursor wraps to the beginning
        start_at, n = await backend._script(
            "sweep", lua.ORPHANS, [JOBS.key, 0, start_at, 2, "", "1"]
        )
        found += n
    assert (start_at, found) == ("-", 5)
    got = await backend.receive(JOBS, 10)
    assert sorted((d.envelope.data, d.attempt) for d in got) == [(n, 2) for n in range(5)]


async def test_the_instance_sweeps_by_itself_and_wakes_its_receivers(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    short = Subscription("jobs", "worker", QueueOptions(lease=0.001))
    backend = await start(nursery, clock, server.url, prefix)
    await backend.publish([env("lost")])
    await read_as_a_dead_instance(backend, prefix, 1)
    got: list[Any] = []

    async def receive() -> None:
        got.extend(await backend.receive(short, 10))

    async with trio.open_nursery() as waiting:
        waiting.start_soon(receive)
        await wait_until_blocked(backend, 1)
        # The sweep runs every trim_interval of the runtime clock; its idle threshold is
        # the lease (1 ms of Redis's clock), which the round trips above outlast.
        mock_clock.jump(backend.options.trim_interval)
    assert [(d.envelope.data, d.attempt) for d in got] == [("lost", 2)]


async def test_a_read_whose_reply_was_lost_hands_its_message_out_again_at_once(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    """Redis served the blocking read (the entry is pending for this consumer) but the reply
    never arrived (Redis was killed, the connection cut): the entry is put back at once and
    delivered as attempt 1, not left for the orphan sweep after a lease."""
    consumer = await start(nursery, clock, server.url, prefix)
    producer = await start(nursery, clock, server.url, prefix)
    lost: list[Any] = []

    async def lose(reply: Any) -> Any:
        lost.append(reply)
        raise WireError("connection lost after Redis served the read (simulated)")

    intercept_first_served_read(consumer, lose)
    got: list[Any] = []

    async def receive() -> None:
        got.extend(await consumer.receive(JOBS, 10))

    mock_clock.rate = 1.0  # virtual time runs, so a regression fails instead of hanging
    with trio.fail_after(20):  # far less than the 30 s lease the orphan sweep would need
        async with trio.open_nursery() as waiting:
            waiting.start_soon(receive)
            await wait_until_blocked(consumer, 1)
            await producer.publish([env("once")])
    assert len(lost) == 1  # the first handout was lost on the way
    assert [(d.envelope.data, d.attempt) for d in got] == [("once", 1)]
    await consumer.ack(got)
    assert (await consumer.depth())[JOBS.key] == QueueDepth()


async def test_a_read_cancelled_as_redis_served_it_puts_its_message_back_at_once(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    """A graceful stop cancels a blocked receive just as Redis hands it an entry: the reply
    dies with the connection, and the entry is put back uncounted, not left for the orphan
    sweep (after a lease, as attempt 2)."""
    consumer = await start(nursery, clock, server.url, prefix)
    producer = await start(nursery, clock, server.url, prefix)
    served = trio.Event()

    async def hold(reply: Any) -> Any:
        served.set()
        await trio.sleep_forever()  # the reply is still on its way at the cancel

    intercept_first_served_read(consumer, hold)
    async with trio.open_nursery() as waiting:
        waiting.start_soon(consumer.receive, JOBS, 10)
        await wait_until_blocked(consumer, 1)
        await producer.publish([env("caught")])
        await served.wait()
        waiting.cancel_scope.cancel()  # the runtime stopping: its fetch is cancelled
    assert (await consumer.depth())[JOBS.key] == QueueDepth(ready=1)
    [again] = await producer.receive(JOBS, 10)  # another instance takes it now
    assert (again.envelope.data, again.attempt) == ("caught", 1)


async def consumer_names(backend: RedisBackend, prefix: str) -> set[str]:
    stream = f"{prefix}:stream:jobs"
    consumers = await command(backend, "XINFO", "CONSUMERS", stream, JOBS.key)
    return {dict(zip(c[::2], c[1::2], strict=True))["name"] for c in consumers}


async def test_names_of_stopped_instances_are_forgotten_unless_they_hold_work(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock, server: RedisServer,
    prefix: str,
) -> None:  # fmt: skip
    options = RedisOptions(forget_consumers_after=0.001)
    backend: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix=prefix, options=options).run, clock
    )
    await backend.declare([JOBS])
    await backend.publish([env("held")])
    await read_as_a_dead_instance(backend, prefix, 1)  # "dead-host:1:x" holds the entry
    await backend.publish([env("done")])
    await backend.ack(await backend.receive(JOBS, 10))  # this instance's name, nothing pending
    stream = f"{prefix}:stream:jobs"
    await command(backend, "XGROUP", "CREATECONSUMER", stream, JOBS.key, "gone-host:2:y")

    # Not yet silent for an hour: kept.
    args = [JOBS.key, 3_600_000, backend.consumer]
    assert await backend._script("forget", lua_admin.FORGET_CONSUMERS, args) == 0
    assert await consumer_names(backend, prefix) == {
        "dead-host:1:x",
        "gone-host:2:y",
        backend.consumer,
    }

    # The instance's own sweep (every trim_interval), with a threshold of 1 ms: the name with
    # nothing pending goes, the one holding an entry stays, and so does this instance's own.
    async with trio.open_nursery() as waiting:
        waiting.start_soon(backend.receive, JOBS, 10)
        await wait_until_blocked(backend, 1)
        mock_clock.jump(backend.options.trim_interval)
        for _ in range(10_000):  # round trips until the sweep ran
            names = await consumer_names(backend, prefix)
            if "gone-host:2:y" not in names:
                break
        waiting.cancel_scope.cancel()
    assert names == {"dead-host:1:x", backend.consumer}
