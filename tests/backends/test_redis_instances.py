"""Several RedisBackend instances on one redis-server: fan-out, competing consumers, reclaim
of a vanished instance's messages, fifo per group, cron ticks, stream trimming.

Time is trio's manual MockClock (the `clock` fixture of tests/backends/conftest.py): it moves
only through `mock_clock.jump`, so leases expire exactly when a test says. "Everyone is
done" is decided the contract's way: every task blocked for QUIET seconds of real time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator

import attrs
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import (
    Delivery,
    Envelope,
    QueueDepth,
    QueueOptions,
    Subscription,
    random_id,
)
from motet._errors import BackendError
from motet.backends._redis import RedisBackend
from motet.backends._redis_link import RedisOptions

from .._redis_server import RedisServer, redis_server

QUIET = 0.2


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
async def instances(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer
) -> AsyncIterator[list[RedisBackend]]:
    """Three instances sharing one prefix, as three processes on three hosts would."""
    prefix = "i" + random_id()[:12]
    started = [
        await nursery.start(RedisBackend(server.url, prefix=prefix).run, clock) for _ in range(3)
    ]
    yield started


def env(data: object, *, topic: str = "jobs", group: str | None = None) -> Envelope:
    return Envelope(topic=topic, data=data, trace_id="t", group=group)


async def drain(
    backends: list[RedisBackend],
    subscription: Subscription,
    on_delivery: Callable[[int, Delivery], None] | None = None,
    max_count: int = 10,
) -> dict[int, list[Delivery]]:
    """Every instance receives and acks until nothing is left anywhere; who got what."""
    got: dict[int, list[Delivery]] = defaultdict(list)

    async def consume(index: int, backend: RedisBackend) -> None:
        while True:
            batch = await backend.receive(subscription, max_count)
            for delivery in batch:
                if on_delivery is not None:
                    on_delivery(index, delivery)
            got[index].extend(batch)
            await trio.lowlevel.checkpoint()
            await backend.ack(batch)

    async with trio.open_nursery() as nursery:
        for index, backend in enumerate(backends):
            nursery.start_soon(consume, index, backend)
        await trio.testing.wait_all_tasks_blocked(QUIET)
        nursery.cancel_scope.cancel()
    return got


async def test_fan_out_to_steps_and_competition_within_a_step(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    shipping = Subscription("jobs", "shipping")
    audit = Subscription("jobs", "audit")
    for backend in instances:
        await backend.declare([shipping])
    await instances[0].declare([audit])
    await instances[1].publish([env(i) for i in range(150)])
    await instances[2].publish([env(i) for i in range(150, 300)])

    shipped = await drain(instances, shipping)
    audited = await drain(instances[:1], audit)

    every = sorted(d.envelope.data for ds in shipped.values() for d in ds)
    assert every == list(range(300))  # each message once to the shipping step
    assert len([i for i, ds in shipped.items() if ds]) >= 2  # instances competed for them
    assert sorted(d.envelope.data for d in audited[0]) == list(range(300))  # its own copy
    assert all(d.attempt == 1 for ds in shipped.values() for d in ds)
    depth = await instances[2].depth()
    assert depth[shipping.key] == depth[audit.key] == QueueDepth()


async def test_a_vanished_instance_messages_go_to_another_after_the_lease(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    prefix = "v" + random_id()[:12]
    jobs = Subscription("jobs", "worker", QueueOptions(lease=30))
    survivor: RedisBackend = await nursery.start(RedisBackend(server.url, prefix=prefix).run, clock)
    await survivor.declare([jobs])
    await survivor.publish([env(i) for i in range(5)])

    async with trio.open_nursery() as doomed_scope:
        doomed: RedisBackend = await doomed_scope.start(
            RedisBackend(server.url, prefix=prefix).run, clock
        )
        taken = await doomed.receive(jobs, 10)
        assert sorted(d.envelope.data for d in taken) == list(range(5))
        doomed_scope.cancel_scope.cancel()  # the instance is gone without acking anything

    assert await drain([survivor], jobs) == {}  # still leased to the vanished instance
    assert (await survivor.depth())[jobs.key] == QueueDepth(leased=5)
    mock_clock.jump(31)
    got = await drain([survivor], jobs)
    assert sorted(d.envelope.data for d in got[0]) == list(range(5))
    assert {d.attempt for d in got[0]} == {2}  # the lost delivery counted
    assert (await survivor.depth())[jobs.key] == QueueDepth()


async def test_reclaimed_entries_move_to_the_reclaiming_consumer(
    instances: list[RedisBackend], server: RedisServer, mock_clock: MockClock
) -> None:
    import coredis

    jobs = Subscription("jobs", "worker", QueueOptions(lease=10))
    first, second, _ = instances
    await first.declare([jobs])
    await first.publish([env(1)])
    [lost] = await first.receive(jobs, 1)
    mock_clock.jump(11)
    [again] = await second.receive(jobs, 1)
    assert again.envelope.id == lost.envelope.id and again.attempt == 2
    from coredis.response.types import StreamPending

    client = coredis.Redis.from_url(server.url, decode_responses=True)
    async with client:
        pending = await client.xpending(f"{second.prefix}:stream:jobs", jobs.key)
    # the summary form (no id range asked)
    assert isinstance(pending, StreamPending)
    assert pending.consumers == {second.consumer: 1}
    await first.ack([lost])  # stale: a no-op, the message is the second instance's now
    assert (await first.depth())[jobs.key] == QueueDepth(leased=1)
    await second.ack([again])
    assert (await first.depth())[jobs.key] == QueueDepth()


async def test_fifo_keeps_group_order_and_one_in_flight_across_instances(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    orders = Subscription("orders", "ship", QueueOptions(strategy="fifo"))
    for backend in instances:
        await backend.declare([orders])
    groups = ["a", "b", "c", "d"]
    await instances[0].publish(
        [env({"g": g, "n": n}, topic="orders", group=g) for n in range(8) for g in groups]
    )
    in_flight: set[str] = set()
    seen: dict[str, list[int]] = defaultdict(list)

    def on_delivery(_: int, delivery: Delivery) -> None:
        group = delivery.envelope.group
        assert group is not None and group not in in_flight, f"two of group {group} at once"
        in_flight.add(group)
        seen[group].append(delivery.envelope.data["n"])

    async def consume(backend: RedisBackend) -> None:
        while True:
            batch = await backend.receive(orders, 10)
            for delivery in batch:
                on_delivery(0, delivery)
            await trio.lowlevel.checkpoint()
            for delivery in batch:
                in_flight.discard(delivery.envelope.group or "")
            await backend.ack(batch)

    async with trio.open_nursery() as nursery:
        for backend in instances:
            nursery.start_soon(consume, backend)
        await trio.testing.wait_all_tasks_blocked(QUIET)
        nursery.cancel_scope.cancel()
    assert dict(seen) == {g: list(range(8)) for g in groups}


async def test_each_cron_tick_is_claimed_once_across_instances(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    wins: list[tuple[int, float]] = []
    start = 1_767_603_600.0

    async def claim_all(index: int, backend: RedisBackend) -> None:
        for n in range(60):
            if await backend.claim_tick("report", start + 60 * n):
                wins.append((index, start + 60 * n))

    async with trio.open_nursery() as nursery:
        for index, backend in enumerate(instances):
            nursery.start_soon(claim_all, index, backend)
    assert sorted(tick for _, tick in wins) == [start + 60 * n for n in range(60)]
    assert await instances[1].last_tick("report") == start + 60 * 59


async def test_acked_entries_are_trimmed_from_the_stream(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    import coredis

    backend: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix="trim" + random_id()[:8], options=RedisOptions()).run, clock
    )
    fast, slow = Subscription("jobs", "fast"), Subscription("jobs", "slow")
    await backend.declare([fast, slow])
    await backend.publish([env(i) for i in range(10)])
    await backend.ack(await backend.receive(fast, 10))
    stream = f"{backend.prefix}:stream:jobs"
    client = coredis.Redis.from_url(server.url, decode_responses=True)
    async with client:
        mock_clock.jump(backend.options.trim_interval)
        await trio.testing.wait_all_tasks_blocked(QUIET)
        assert await client.xlen(stream) == 10  # the slow step still needs them
        await backend.ack((await backend.receive(slow, 4))[:3])
        mock_clock.jump(backend.options.trim_interval)
        await trio.testing.wait_all_tasks_blocked(QUIET)
        assert await client.xlen(stream) == 7
        assert [d.envelope.data for d in await backend.receive(slow, 10)] == [4, 5, 6, 7, 8, 9]


async def test_many_idle_subscriptions_do_not_starve_commands(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    """Each subscription with an idle receiver blocks one connection in Redis (its wake-up
    read); with more of them than the command pool holds, every receiver must still be woken
    by another instance's publish, and acks must still go through."""
    prefix = "m" + random_id()[:8]
    small = RedisOptions(max_connections=8)
    backend: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix=prefix, options=small).run, clock
    )
    publisher: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix=prefix).run, clock
    )
    subs = [Subscription(f"topic{n}", "step") for n in range(40)]
    await backend.declare(subs)
    got: dict[str, list[Delivery]] = {}

    async def wait_one(subscription: Subscription) -> None:
        batch = await backend.receive(subscription, 1)
        await backend.ack(batch)
        got[subscription.key] = batch

    async with trio.open_nursery() as waiting:
        for subscription in subs:
            waiting.start_soon(wait_one, subscription)
        await trio.testing.wait_all_tasks_blocked(QUIET)
        assert got == {}
        await publisher.publish([env(s.topic, topic=s.topic) for s in subs])
        await trio.testing.wait_all_tasks_blocked(QUIET)  # a starved receiver stays blocked
        waiting.cancel_scope.cancel()
    assert {key: [d.envelope.data for d in ds] for key, ds in got.items()} == {
        s.key: [s.topic] for s in subs
    }
    assert all(depth == QueueDepth() for depth in (await backend.depth()).values())


async def test_declaring_a_new_strategy_refiles_what_is_waiting(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    first, second, _ = instances
    ranked = Subscription("jobs", "ranked", QueueOptions(lease=10))
    await first.declare([ranked])
    await first.publish(
        [Envelope("jobs", n, "t", priority=p) for n, p in ((1, 1), (2, 5), (3, 3), (4, 4))]
    )
    assert len(await first.receive(ranked, 10)) == 4
    mock_clock.jump(11)
    [one] = await first.receive(ranked, 1)  # the other three wait in the ready set
    assert one.envelope.data == 1
    await second.declare(
        [Subscription("jobs", "ranked", QueueOptions(lease=10, strategy="priority"))]
    )
    assert [d.envelope.data for d in await second.receive(ranked, 10)] == [2, 4, 3]

    ordered = Subscription("orders", "ordered", QueueOptions(strategy="fifo"))
    await first.declare([ordered])
    await first.publish([env(n, topic="orders", group="a") for n in (1, 2, 3)])
    assert [d.envelope.data for d in await first.receive(ordered, 10)] == [1]  # 2, 3 parked
    await second.declare([Subscription("orders", "ordered")])  # standard: nothing is held
    assert [d.envelope.data for d in await second.receive(ordered, 10)] == [2, 3]
    assert (await second.depth())[ordered.key] == QueueDepth(leased=3)


async def test_one_backend_object_runs_once_at_a_time(
    instances: list[RedisBackend], clock: WallClock, nursery: trio.Nursery
) -> None:
    with pytest.raises(BackendError, match="already running"):
        await nursery.start(instances[0].run, clock)


async def test_a_late_ack_applies_until_the_message_is_handed_out_again(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    """A receive re-queues every expired lease but hands out only what it was asked for:
    the old holder of a re-queued message that nobody has yet may still ack it."""
    first, second, _ = instances
    jobs = Subscription("jobs", "worker", QueueOptions(lease=10))
    await first.declare([jobs])
    await first.publish([env(1), env(2)])
    old_one, old_two = await first.receive(jobs, 10)
    mock_clock.jump(11)
    [again] = await second.receive(jobs, 1)  # both re-queued, only message 1 handed out
    assert (again.envelope.data, again.attempt) == (1, 2)
    assert (await first.depth())[jobs.key] == QueueDepth(ready=1, leased=1)
    await first.ack([old_one, old_two])  # 1: someone else has it (no-op); 2: applies
    assert (await first.depth())[jobs.key] == QueueDepth(leased=1)
    await second.ack([again])
    assert (await first.depth())[jobs.key] == QueueDepth()


async def test_batches_beyond_what_one_script_call_takes_are_split(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    backend = instances[0]
    jobs = Subscription("jobs", "bulk")
    await backend.declare([jobs])
    await backend.publish([env(n) for n in range(2500)])
    first = await backend.receive(jobs, 5000)  # at most 1000 per receive
    assert len(first) == 1000
    rest = first + await backend.receive(jobs, 5000) + await backend.receive(jobs, 5000)
    assert sorted(d.envelope.data for d in rest) == list(range(2500))
    await backend.extend(rest, 60)
    await backend.ack(rest)
    assert (await backend.depth())[jobs.key] == QueueDepth()


async def test_delayed_messages_fire_once_across_instances_receiving_at_once(
    instances: list[RedisBackend], clock: WallClock, mock_clock: MockClock
) -> None:
    jobs = Subscription("jobs", "worker")
    for backend in instances:
        await backend.declare([jobs])
    now = clock.now()
    for i in range(90):  # published from every instance, due over a minute
        envelope = attrs.evolve(env(i), not_before=now + 1 + (i % 60))
        await instances[i % 3].publish([envelope])
    assert await drain(instances, jobs) == {}  # nothing is due yet
    assert (await instances[0].depth())[jobs.key] == QueueDepth(scheduled=90)
    got: dict[int, list[Delivery]] = defaultdict(list)

    async def consume(index: int, backend: RedisBackend) -> None:
        while True:
            batch = await backend.receive(jobs, 10)
            got[index].extend(batch)
            await backend.ack(batch)

    async with trio.open_nursery() as nursery:
        for index, backend in enumerate(instances):
            nursery.start_soon(consume, index, backend)
        for _ in range(70):  # every receiver wakes for what came due, one second at a time
            mock_clock.jump(1)
            await trio.testing.wait_all_tasks_blocked(QUIET)
        nursery.cancel_scope.cancel()
    every = sorted(d.envelope.data for ds in got.values() for d in ds)
    assert every == list(range(90))  # each once, on whichever instance got there first
    assert all(d.attempt == 1 for ds in got.values() for d in ds)
    assert (await instances[1].depth())[jobs.key] == QueueDepth()


async def test_racing_publishes_of_the_same_keys_on_three_instances_enqueue_one_each(
    instances: list[RedisBackend], mock_clock: MockClock
) -> None:
    jobs = Subscription("jobs", "worker")
    for backend in instances:
        await backend.declare([jobs])
    answers: dict[str, set[str]] = defaultdict(set)

    async def publish(backend: RedisBackend, key: str) -> None:
        [sent] = await backend.publish([attrs.evolve(env(key), key=key)])
        answers[key].add(sent)

    async with trio.open_nursery() as nursery:
        for round_ in range(3):
            for n in range(40):
                for backend in instances:
                    nursery.start_soon(publish, backend, f"order-{(n + round_) % 40}")
    assert all(len(ids) == 1 for ids in answers.values()), answers
    got = await drain(instances, jobs)
    delivered = sorted(d.envelope.data for ds in got.values() for d in ds)
    assert delivered == sorted(answers)  # one message per key
    assert {d.envelope.id for ds in got.values() for d in ds} == {
        next(iter(ids)) for ids in answers.values()
    }
