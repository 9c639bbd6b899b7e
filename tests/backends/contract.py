"""The contract every backend passes: the promises of motet/backends/_protocol.py as tests.

Hooking a backend in (tests/backends/test_<name>.py):

    class TestSqliteContract(BackendContract):
        quiet_seconds = 0.05   # real seconds of no activity that mean "receive would block"

        @pytest.fixture
        async def backend(self, nursery, clock, tmp_path):
            return await nursery.start(SqliteBackend(tmp_path / "motet.db").run, clock)

        @pytest.fixture          # optional: a second instance over the same storage
        async def other_instance(self, nursery, clock, tmp_path, backend):
            return await nursery.start(SqliteBackend(tmp_path / "motet.db").run, clock)

`clock` (a WallClock anchored at conftest.ANCHOR) comes from tests/backends/conftest.py.
Every test runs under pytest-trio's manual `mock_clock`, NOT autojump: a backend doing
real I/O (a worker thread, a socket) would otherwise see virtual time jump while it
waits. Time moves only through `mock_clock.jump(seconds)`.

Every test takes `mock_clock` itself, because pytest-trio picks the run's clock from the
test function's own arguments; extra tests in a subclass must do the same.

`receive` blocks, so tests never call it bare: `receive_some` fails clearly when nothing
is ready instead of hanging, `receive_now` returns [] when `receive` would block, and
`receive_while_waiting` checks that a blocked receive wakes up for some event. They
decide "would block" when every task has been blocked for `quiet_seconds` of real time
(`trio.testing.wait_all_tasks_blocked(cushion)`), which also covers a backend waiting on
a thread or a socket; raise `quiet_seconds` for a slow backend. `ContractTools` alone
(without the tests) serves a backend's own extra test classes.

The parts: QueueContract, OrderingContract (fifo, priority), DeadLetterContract,
DeadLetterAnnouncementContract (tracebacks, dead-letter topics), ModelContract (a seeded
random walk held to tests/backends/queue_model.py), StateContract, ScheduleContract and
SharedInstanceContract (skipped without `other_instance`); DelayedContract,
IdempotencyContract, ExpiryContract and SharedLaterContract (delayed emits, idempotency
keys, expiry). Where the Protocol leaves a choice, the tests accept each reading: a settle
after a lease expired but before the message was handed out again may apply or not.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import attrs
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import (
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    QueueOptions,
    QueueStrategy,
    RateLimit,
    Subscription,
    is_expired,
    state_topic,
)
from motet._errors import BackendError
from motet.backends._protocol import TICK_MARK_RETENTION, Backend, Leased
from motet.state import StateWrite

from .queue_model import random_walk

TRACE = "trace-contract"

T = TypeVar("T")


def sub(
    topic: str = "orders",
    step: str = "worker",
    *,
    strategy: QueueStrategy = "standard",
    lease: float = 30.0,
) -> Subscription:
    return Subscription(topic, step, QueueOptions(strategy=strategy, lease=lease))


def env(
    data: Any = None,
    *,
    topic: str = "orders",
    group: str | None = None,
    priority: int = 0,
    created_at: float = 0.0,
) -> Envelope:
    return Envelope(
        topic=topic,
        data=data,
        trace_id=TRACE,
        group=group,
        priority=priority,
        created_at=created_at,
    )


def datas(deliveries: list[Delivery]) -> list[Any]:
    return [d.envelope.data for d in deliveries]


class ContractTools:
    """Waiting helpers that never hang a test (see the module docstring)."""

    quiet_seconds: ClassVar[float] = 0.05

    async def quiet(self) -> None:
        """Return once every task has been blocked for `quiet_seconds` (real time)."""
        await trio.testing.wait_all_tasks_blocked(self.quiet_seconds)

    async def answer_now(self, call: Callable[[], Awaitable[T]]) -> list[T]:
        """`[what call() answers]` when it answers without waiting; [] when it would block."""
        got: list[T] = []
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                got.append(await call())
                nursery.cancel_scope.cancel()

            nursery.start_soon(receive)
            await self.quiet()
            nursery.cancel_scope.cancel()
        return got

    async def receive_now(
        self, backend: Backend, subscription: Subscription, max_count: int = 100
    ) -> list[Delivery]:
        """What `receive` hands out without waiting: [] when it would block."""
        got = await self.answer_now(lambda: backend.receive(subscription, max_count))
        return got[0] if got else []

    async def receive_some(
        self, backend: Backend, subscription: Subscription, max_count: int = 100
    ) -> list[Delivery]:
        """`receive`, failing the test (instead of hanging) when nothing is ready."""
        got = await self.receive_now(backend, subscription, max_count)
        if not got:
            depth = (await backend.depth()).get(subscription.key)
            pytest.fail(
                f"receive({subscription.key!r}) would block: nothing is ready (depth {depth})"
            )
        return got

    async def receive_all(
        self, backend: Backend, subscription: Subscription, max_count: int = 100
    ) -> list[Delivery]:
        """Everything ready now, over as many `receive` calls as it takes."""
        out: list[Delivery] = []
        while batch := await self.receive_now(backend, subscription, max_count):
            out.extend(batch)
        return out

    async def receive_while_waiting(
        self,
        backend: Backend,
        subscription: Subscription,
        *steps: Callable[[], Awaitable[object]],
        receiver: Backend | None = None,
    ) -> list[Delivery]:
        """Start a `receive` that must block, run `steps` while it waits (each must leave it
        still blocked but the last), and return what it got once things went quiet ([] if it
        never woke). `receiver` is the instance receiving, `backend` by default."""
        got: list[Delivery] = []
        async with trio.open_nursery() as nursery:

            async def consumer() -> None:
                got.extend(await (receiver or backend).receive(subscription, 100))

            nursery.start_soon(consumer)
            for step in (None, *steps):
                if step is not None:
                    await step()
                await self.quiet()
                if step is not steps[-1]:
                    assert got == [], f"receive returned before step {step}: {got}"
            nursery.cancel_scope.cancel()
        return got

    async def depth_of(self, backend: Backend, subscription: Subscription) -> QueueDepth:
        return (await backend.depth())[subscription.key]


class QueueContract(ContractTools):
    async def test_is_a_backend(self, backend: Backend, mock_clock: MockClock) -> None:
        assert isinstance(backend, Backend)
        assert isinstance(backend.name, str) and backend.name

    async def test_publish_then_receive_round_trips_the_envelope(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = env({"n": 1}, group="g", priority=3, created_at=1_767_600_000.25)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        assert delivery.envelope == sent
        assert delivery.subscription == s.key
        assert delivery.attempt == 1
        assert isinstance(delivery.receipt, str)

    async def test_fan_out_gives_each_subscription_its_own_copy(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        other = sub(topic="elsewhere", step="c")
        await backend.declare([a, b, other])
        sent = env({"n": 1})
        await backend.publish([sent])
        [da] = await self.receive_some(backend, a)
        await backend.ack([da])
        [db] = await self.receive_some(backend, b)
        assert da.envelope.id == db.envelope.id == sent.id
        assert (da.subscription, db.subscription) == (a.key, b.key)
        assert await self.receive_now(backend, other) == []

    async def test_topic_without_subscriber_is_dropped(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        await backend.publish([env({"lost": True}, topic="nobody")])
        late = sub(topic="nobody")
        await backend.declare([late])  # subscribing later does not resurrect it
        assert await self.receive_now(backend, late) == []
        assert await self.depth_of(backend, late) == QueueDepth()

    async def test_declare_is_idempotent(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        await backend.declare([s, s])
        await backend.publish([env(1)])
        assert datas(await self.receive_all(backend, s)) == [1]

    async def test_declare_again_with_more_subscriptions(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a])
        await backend.declare([b])
        await backend.publish([env(1)])
        assert datas(await self.receive_some(backend, a)) == [1]
        assert datas(await self.receive_some(backend, b)) == [1]

    async def test_receive_takes_at_most_max_count(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(i) for i in range(5)])
        first = await self.receive_some(backend, s, max_count=2)
        assert datas(first) == [0, 1]
        assert await self.depth_of(backend, s) == QueueDepth(ready=3, leased=2)
        assert datas(await self.receive_some(backend, s, max_count=10)) == [2, 3, 4]

    async def test_standard_keeps_publish_order(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(i) for i in range(10)])
        await backend.publish([env(i) for i in range(10, 20)])
        assert datas(await self.receive_all(backend, s, max_count=7)) == list(range(20))

    async def test_receive_waits_for_a_publish(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        got = await self.receive_while_waiting(backend, s, lambda: backend.publish([env("hello")]))
        assert datas(got) == ["hello"]

    async def test_a_publish_elsewhere_does_not_wake_a_receive_with_something(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, other = sub(), sub(topic="other")
        await backend.declare([s, other])
        got = await self.receive_while_waiting(
            backend,
            s,
            lambda: backend.publish([env("not for you", topic="other")]),
            lambda: backend.publish([env("for you")]),
        )
        assert datas(got) == ["for you"]

    async def test_ack_forgets_the_message(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1), env(2)])
        deliveries = await self.receive_some(backend, s)
        await backend.ack(deliveries)
        assert await self.depth_of(backend, s) == QueueDepth()
        mock_clock.jump(60)
        assert await self.receive_now(backend, s) == []

    async def test_expired_lease_is_redelivered_with_the_next_attempt(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env({"n": 1})])
        [first] = await self.receive_some(backend, s)
        mock_clock.jump(9)
        assert await self.receive_now(backend, s) == []
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)
        mock_clock.jump(2)
        [second] = await self.receive_some(backend, s)
        assert second.envelope == first.envelope
        assert second.attempt == 2
        mock_clock.jump(11)
        [third] = await self.receive_some(backend, s)
        assert third.attempt == 3

    async def test_waiting_receive_wakes_when_a_lease_expires(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        await self.receive_some(backend, s)

        async def jump() -> None:
            mock_clock.jump(10.5)

        got = await self.receive_while_waiting(backend, s, jump)
        assert [(d.envelope.data, d.attempt) for d in got] == [(1, 2)]

    async def test_ack_of_a_lost_lease_is_a_no_op(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        [stale] = await self.receive_some(backend, s)
        mock_clock.jump(11)
        [current] = await self.receive_some(backend, s)
        await backend.ack([stale])  # the slow first consumer finally finishes
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)
        await backend.ack([current])
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_release_makes_deliveries_ready_again_with_the_same_attempt(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1), env(2), env(3)])
        taken = await self.receive_some(backend, s)
        assert datas(taken) == [1, 2, 3]
        await backend.release(taken[1:])  # a graceful stop: 2 and 3 never started
        assert await self.depth_of(backend, s) == QueueDepth(ready=2, leased=1)
        again = await self.receive_some(backend, s)
        assert sorted((d.envelope.data, d.attempt) for d in again) == [(2, 1), (3, 1)]
        await backend.ack([taken[0], *again])
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_release_wakes_a_waiting_receive(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        taken = await self.receive_some(backend, s)

        async def release() -> None:
            await backend.release(taken)

        got = await self.receive_while_waiting(backend, s, release)
        assert [(d.envelope.data, d.attempt) for d in got] == [(1, 1)]

    async def test_release_of_a_lost_or_settled_lease_is_a_no_op(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1), env(2)])
        stale, done = await self.receive_some(backend, s)
        await backend.ack([done])
        mock_clock.jump(11)
        [current] = await self.receive_some(backend, s)
        assert current.attempt == 2
        await backend.release([stale, done])
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)
        await backend.release([current, current])  # twice: the second finds nothing
        [last] = await self.receive_some(backend, s)
        assert (last.envelope.data, last.attempt) == (1, 2)

    async def test_released_fifo_head_keeps_its_group_order(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env("a1", group="A"), env("a2", group="A")])
        [first] = await self.receive_some(backend, s)
        await backend.release([first])
        [again] = await self.receive_some(backend, s)
        assert (again.envelope.data, again.attempt) == ("a1", 1)
        await backend.ack([again])
        assert datas(await self.receive_some(backend, s)) == ["a2"]

    async def test_a_late_settle_applies_or_leaves_the_message_for_redelivery(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        # After a lease expired, and before the message is handed out again, an ack, retry
        # or bury from the old holder may apply or be a no-op (the Protocol only promises
        # the no-op once someone else has it): either way nothing is lost or doubled.
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1), env(2), env(3)])
        late_ack, late_retry, late_bury = await self.receive_some(backend, s)
        mock_clock.jump(11)
        await backend.ack([late_ack])
        await backend.retry(late_retry, delay=5, error="late")
        letter = await backend.bury(late_bury, error="late")
        mock_clock.jump(5)
        attempts = {d.envelope.data: d.attempt for d in await self.receive_all(backend, s)}
        assert attempts.get(1, 2) == 2  # acked, or delivered again
        assert attempts[2] == 2  # retried or delivered again: its second attempt either way
        if letter.id:
            assert await backend.dead_letters(s.key) == [letter]
            assert 3 not in attempts
        else:
            assert await backend.dead_letters(s.key) == []
            assert attempts[3] == 2

    async def test_extend_keeps_the_lease(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)
        mock_clock.jump(8)
        await backend.extend([delivery], 30)  # now leased until 8 + 30
        mock_clock.jump(25)
        assert await self.receive_now(backend, s) == []
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)
        await backend.ack([delivery])
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_extended_lease_still_expires(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)
        await backend.extend([delivery], 20)
        mock_clock.jump(19)
        assert await self.receive_now(backend, s) == []
        mock_clock.jump(2)
        [again] = await self.receive_some(backend, s)
        assert again.attempt == 2

    async def test_retry_waits_for_its_delay(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env({"n": 1})])
        [delivery] = await self.receive_some(backend, s)
        await backend.retry(delivery, delay=5, error="ValueError: boom")
        assert await self.depth_of(backend, s) == QueueDepth(delayed=1)
        mock_clock.jump(4.5)
        assert await self.receive_now(backend, s) == []
        mock_clock.jump(1)
        [again] = await self.receive_some(backend, s)
        assert again.envelope == delivery.envelope
        assert again.attempt == 2
        await backend.ack([again])
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_retry_without_delay_is_ready_at_once(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)
        await backend.retry(delivery, delay=0, error="boom")
        [again] = await self.receive_some(backend, s)
        assert again.attempt == 2

    async def test_waiting_receive_wakes_for_a_due_retry(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)

        async def jump() -> None:
            mock_clock.jump(3.5)

        got = await self.receive_while_waiting(
            backend,
            s,
            lambda: backend.retry(delivery, delay=3, error="boom"),  # while it waits
            jump,
        )
        assert [(d.envelope.data, d.attempt) for d in got] == [(1, 2)]

    async def test_attempts_count_lost_leases_and_retries_alike(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        [d1] = await self.receive_some(backend, s)
        mock_clock.jump(11)
        [d2] = await self.receive_some(backend, s)
        await backend.retry(d2, delay=1, error="boom")
        mock_clock.jump(1.5)
        [d3] = await self.receive_some(backend, s)
        assert (d1.attempt, d2.attempt, d3.attempt) == (1, 2, 3)
        letter = await backend.bury(d3, error="enough")
        assert letter.attempts == 3

    async def test_empty_batches_are_no_ops(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        await backend.declare([])
        await backend.publish([])
        await backend.ack([])
        await backend.extend([], 30)
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_one_ack_may_span_subscriptions(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b", topic="other")
        await backend.declare([a, b])
        await backend.publish([env(1), env(2, topic="other")])
        both = await self.receive_some(backend, a) + await self.receive_some(backend, b)
        await backend.ack(both)
        depth = await backend.depth()
        assert (depth[a.key], depth[b.key]) == (QueueDepth(), QueueDepth())

    async def test_topics_match_exactly(self, backend: Backend, mock_clock: MockClock) -> None:
        names = ["order", "orders", "order:s", "order.s", "ORDER", "order s", "ordér"]
        subs = [sub(topic=name, step="w") for name in names]
        await backend.declare(subs)
        await backend.publish([env(name, topic=name) for name in names])
        for s, name in zip(subs, names, strict=True):
            assert datas(await self.receive_all(backend, s)) == [name]

    async def test_a_thousand_messages_each_delivered_once(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        for start in range(0, 1000, 250):
            await backend.publish([env({"i": i}) for i in range(start, start + 250)])
        got = await self.receive_all(backend, s, max_count=300)
        assert [d.envelope.data["i"] for d in got] == list(range(1000))
        assert len({d.envelope.id for d in got}) == 1000
        await backend.ack(got)
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_large_payload_round_trips(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        big = {"blob": "x" * 200_000 + "é", "rows": [{"i": i} for i in range(2000)]}
        await backend.publish([env(big)])
        [delivery] = await self.receive_some(backend, s)
        assert delivery.envelope.data == big

    async def test_data_round_trips_json_types(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        payloads: list[Any] = [
            {
                "text": "héllo wörld ✓ 日本語 🎉",
                "int": 2**53,
                "negative": -7,
                "float": 3.25,
                "tiny": 1e-300,
                "zero": 0.0,
                "bool": True,
                "none": None,
                "list": [1, "two", 3.5, None, False, [], {}],
                "nested": {"a": {"b": {"c": [{"d": "deep"}]}}},
                "empty": {},
            },
            [1, 2, 3],
            "just a string",
            42,
            1.5,
            False,
            None,
        ]
        await backend.publish([env(p) for p in payloads])
        got = datas(await self.receive_all(backend, s))
        assert got == payloads
        assert [type(x) for x in got] == [type(x) for x in payloads]
        assert type(got[0]["zero"]) is float and type(got[0]["int"]) is int

    async def test_data_is_isolated_from_mutation(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        data: dict[str, Any] = {"items": [1, 2], "meta": {"k": "v"}}
        await backend.publish([env(data)])
        data["items"].append(3)  # the emitter keeps using its dict
        data["meta"]["k"] = "changed"
        [first] = await self.receive_some(backend, s)
        assert first.envelope.data == {"items": [1, 2], "meta": {"k": "v"}}
        first.envelope.data["items"].clear()  # a handler mutates its input, then fails
        mock_clock.jump(11)
        [second] = await self.receive_some(backend, s)
        assert second.envelope.data == {"items": [1, 2], "meta": {"k": "v"}}

    async def test_data_is_taken_before_publish_first_yields(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        # A publish copies or encodes its payloads before other tasks run, so what is
        # queued is the data as it was at the call even when the caller's dict changes
        # while the call is under way (the publisher hands a flat payload over as is).
        s = sub()
        await backend.declare([s])
        sent: list[dict[str, Any]] = []

        async def change(data: dict[str, Any]) -> None:
            await trio.lowlevel.checkpoint()  # the publish (started with it) has begun
            data["n"] = -1

        for batch in ([1], [2, 3], [4]) * 40:  # a memory backend yields on one call in 16
            datas_ = [{"n": n} for n in batch]
            sent += [dict(d) for d in datas_]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(backend.publish, [env(d) for d in datas_])
                for d in datas_:
                    nursery.start_soon(change, d)
        assert datas(await self.receive_all(backend, s)) == sent

    async def test_depth_counts_each_condition(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, idle = sub(), sub(step="idle")
        await backend.declare([s, idle])
        await backend.publish([env(i) for i in range(6)])
        d1, d2, d3 = await self.receive_some(backend, s, max_count=3)
        await backend.retry(d1, delay=60, error="later")
        await backend.bury(d2, error="dead")
        depth = await backend.depth()
        assert depth[s.key] == QueueDepth(ready=3, leased=1, delayed=1, dead=1)
        assert depth[s.key].pending == 5
        assert depth[idle.key] == QueueDepth(ready=6)
        await backend.ack([d3])
        assert (await self.depth_of(backend, s)).pending == 4


class OrderingContract(ContractTools):
    async def test_fifo_delivers_one_message_per_group_in_order(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish(
            [env("a1", group="A"), env("a2", group="A"), env("b1", group="B"), env("a3", group="A")]
        )
        first = await self.receive_some(backend, s)
        assert sorted(datas(first)) == ["a1", "b1"]
        assert await self.receive_now(backend, s) == []  # a2 waits for a1
        by_data = {d.envelope.data: d for d in first}
        await backend.ack([by_data["a1"]])
        [a2] = await self.receive_some(backend, s)
        assert a2.envelope.data == "a2"
        await backend.ack([a2, by_data["b1"]])
        assert datas(await self.receive_some(backend, s)) == ["a3"]

    async def test_fifo_retry_blocks_only_its_own_group(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env("a1", group="A"), env("a2", group="A"), env("b1", group="B")])
        first = {d.envelope.data: d for d in await self.receive_some(backend, s)}
        assert set(first) == {"a1", "b1"}
        await backend.retry(first["a1"], delay=5, error="boom")
        await backend.ack([first["b1"]])
        await backend.publish([env("b2", group="B")])
        assert datas(await self.receive_some(backend, s)) == ["b2"]  # a2 may not overtake a1
        assert await self.receive_now(backend, s) == []
        mock_clock.jump(5.5)
        [a1] = await self.receive_some(backend, s)
        assert (a1.envelope.data, a1.attempt) == ("a1", 2)
        await backend.ack([a1])
        assert datas(await self.receive_some(backend, s)) == ["a2"]

    async def test_fifo_expired_lease_keeps_the_group_order(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo", lease=10)
        await backend.declare([s])
        await backend.publish([env("a1", group="A"), env("a2", group="A")])
        [first] = await self.receive_some(backend, s)
        assert first.envelope.data == "a1"
        mock_clock.jump(11)
        [again] = await self.receive_some(backend, s)
        assert (again.envelope.data, again.attempt) == ("a1", 2)
        await backend.ack([again])
        assert datas(await self.receive_some(backend, s)) == ["a2"]

    async def test_fifo_bury_unblocks_the_group(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env("a1", group="A"), env("a2", group="A")])
        [a1] = await self.receive_some(backend, s)
        await backend.bury(a1, error="poison")
        assert datas(await self.receive_some(backend, s)) == ["a2"]

    async def test_waiting_receive_wakes_when_a_fifo_group_unblocks(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env("a1", group="A"), env("a2", group="A"), env("a3", group="A")])
        [a1] = await self.receive_some(backend, s)
        got = await self.receive_while_waiting(backend, s, lambda: backend.ack([a1]))
        assert datas(got) == ["a2"]
        got = await self.receive_while_waiting(
            backend, s, lambda: backend.bury(got[0], error="poison")
        )
        assert datas(got) == ["a3"]

    async def test_priority_retry_keeps_its_priority(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="priority")
        await backend.declare([s])
        await backend.publish([env("urgent", priority=9)])
        [urgent] = await self.receive_some(backend, s)
        await backend.retry(urgent, delay=2, error="boom")
        await backend.publish([env("low-1", priority=1), env("low-2", priority=1)])
        assert datas(await self.receive_some(backend, s, max_count=1)) == ["low-1"]
        mock_clock.jump(2.5)
        got = await self.receive_all(backend, s, max_count=1)
        assert [(d.envelope.data, d.attempt) for d in got] == [("urgent", 2), ("low-2", 1)]

    async def test_fifo_many_groups_never_block_each_other(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env(f"{g}{i}", group=g) for i in range(3) for g in "ABCDE"])
        heads = await self.receive_all(backend, s)
        assert sorted(datas(heads)) == ["A0", "B0", "C0", "D0", "E0"]

    async def test_fifo_messages_without_group_are_each_their_own_group(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([env(i) for i in range(4)] + [env("g1", group="G")])
        got = await self.receive_all(backend, s)
        assert sorted(datas(got), key=str) == sorted([0, 1, 2, 3, "g1"], key=str)

    async def test_priority_delivers_highest_first_then_publish_order(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="priority")
        await backend.declare([s])
        await backend.publish(
            [
                env("low", priority=0),
                env("high-1", priority=5),
                env("mid", priority=1),
                env("high-2", priority=5),
                env("negative", priority=-3),
                env("low-2", priority=0),
            ]
        )
        got = await self.receive_all(backend, s, max_count=2)
        assert datas(got) == ["high-1", "high-2", "mid", "low", "low-2", "negative"]

    async def test_priority_newcomer_overtakes_waiting_lower_priority(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="priority")
        await backend.declare([s])
        await backend.publish([env("a", priority=1), env("b", priority=1)])
        assert datas(await self.receive_some(backend, s, max_count=1)) == ["a"]
        await backend.publish([env("urgent", priority=9)])
        assert datas(await self.receive_all(backend, s, max_count=1)) == ["urgent", "b"]


class DeadLetterContract(ContractTools):
    async def test_bury_moves_the_message_to_dead_letters(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s, other = sub(), sub(step="other")
        await backend.declare([s, other])
        await backend.publish([env({"n": 1})])
        mock_clock.jump(7)
        [delivery] = await self.receive_some(backend, s)
        letter = await backend.bury(delivery, error="ValueError: bad input")
        assert letter.id
        assert letter.subscription == s.key
        assert letter.envelope == delivery.envelope
        assert letter.error == "ValueError: bad input"
        assert letter.attempts == 1
        assert letter.failed_at == pytest.approx(clock.now())
        assert await self.depth_of(backend, s) == QueueDepth(dead=1)
        assert await backend.dead_letters(s.key) == [letter]
        assert await backend.dead_letters() == [letter]
        assert await backend.dead_letters(other.key) == []
        assert await backend.dead_letters("nobody@nowhere") == []
        mock_clock.jump(3600)
        assert await self.receive_now(backend, s) == []

    async def test_dead_letters_come_oldest_first_and_honour_limit(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a, b])
        await backend.publish([env(i) for i in range(3)])
        buried = []
        for delivery in await self.receive_some(backend, a):
            mock_clock.jump(1)
            buried.append(await backend.bury(delivery, error=f"e{delivery.envelope.data}"))
        [db, *_] = await self.receive_some(backend, b)
        mock_clock.jump(1)
        buried.append(await backend.bury(db, error="eb"))
        assert [x.error for x in await backend.dead_letters(a.key)] == ["e0", "e1", "e2"]
        assert [x.error for x in await backend.dead_letters(a.key, limit=2)] == ["e0", "e1"]
        assert await backend.dead_letters() == buried
        assert await backend.dead_letters(limit=1) == buried[:1]

    async def test_bury_records_the_attempts(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        [d1] = await self.receive_some(backend, s)
        await backend.retry(d1, delay=0, error="once")
        [d2] = await self.receive_some(backend, s)
        letter = await backend.bury(d2, error="twice")
        assert letter.attempts == 2

    async def test_redrive_requeues_with_attempt_reset(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env({"n": 1}), env({"n": 2})])
        first, second = await self.receive_some(backend, s)
        await backend.retry(first, delay=0, error="once")
        [again] = await self.receive_some(backend, s)
        l1 = await backend.bury(again, error="twice")
        l2 = await backend.bury(second, error="bad")
        assert await backend.redrive([l1.id, "no-such-letter", l1.id]) == 1
        assert await backend.dead_letters(s.key) == [l2]
        [redriven] = await self.receive_some(backend, s)
        assert redriven.envelope == first.envelope
        assert redriven.attempt == 1
        assert await backend.redrive([]) == 0
        assert await backend.redrive(["no-such-letter"]) == 0

    async def test_waiting_receive_wakes_for_a_redrive(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)
        letter = await backend.bury(delivery, error="x")
        got = await self.receive_while_waiting(backend, s, lambda: backend.redrive([letter.id]))
        assert [(d.envelope.data, d.attempt) for d in got] == [(1, 1)]

    async def test_discard_deletes_dead_letters(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1), env(2)])
        d1, d2 = await self.receive_some(backend, s)
        l1 = await backend.bury(d1, error="x")
        l2 = await backend.bury(d2, error="y")
        assert await backend.discard([l1.id, "no-such-letter"]) == 1
        assert await backend.discard([l1.id]) == 0
        assert await backend.dead_letters() == [l2]
        assert await backend.redrive([l1.id]) == 0
        assert await self.depth_of(backend, s) == QueueDepth(dead=1)

    async def test_dead_letter_data_is_isolated_from_mutation(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env({"items": [1]})])
        [delivery] = await self.receive_some(backend, s)
        letter = await backend.bury(delivery, error="x")
        letter.envelope.data["items"].append(2)
        [listed] = await backend.dead_letters()
        listed.envelope.data["items"].append(3)
        await backend.redrive([letter.id])
        [redriven] = await self.receive_some(backend, s)
        assert redriven.envelope.data == {"items": [1]}


def announcement(letter: DeadLetter) -> Envelope:
    """The step actor's kind of dead-letter announcement, built from the stored letter."""
    return Envelope(
        topic=letter.envelope.topic + ".failed",
        data={
            "dead_letter_id": letter.id,
            "subscription": letter.subscription,
            "data": letter.envelope.data,
            "error": letter.error,
            "attempts": letter.attempts,
            "traceback": letter.traceback,
        },
        trace_id=letter.envelope.trace_id,
        group=letter.envelope.group,
        created_at=letter.failed_at,
    )


class DeadLetterAnnouncementContract(ContractTools):
    """`bury` with a traceback and an announcement on a dead-letter topic: one atomic write
    that stores the letter and publishes the announcement, or (lease lost) neither."""

    TRACEBACK = (
        "Traceback (most recent call last):\n"
        '  File "steps/orders_step.py", line 12, in handler\n'
        "    total = order['items']\n"
        "KeyError: 'items'"
    )

    async def test_bury_keeps_the_traceback(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env({"n": 1}), env({"n": 2})])
        d1, d2 = await self.receive_some(backend, s)
        with_tb = await backend.bury(d1, error="KeyError: 'items'", traceback=self.TRACEBACK)
        without = await backend.bury(d2, error="invalid input: ...")
        assert with_tb.traceback == self.TRACEBACK
        assert without.traceback is None
        listed = await backend.dead_letters(s.key)
        assert [x.traceback for x in listed] == [self.TRACEBACK, None]
        assert listed == [with_tb, without]

    async def test_a_long_unicode_traceback_round_trips(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(1)])
        [delivery] = await self.receive_some(backend, s)
        text = "\n".join(f"  ligne {i}: «données» ✓ \\ '\"" for i in range(500))
        await backend.bury(delivery, error="E", traceback=text)
        [listed] = await backend.dead_letters()
        assert listed.traceback == text

    async def test_bury_publishes_the_announcement_and_keeps_the_letter(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, watcher = sub(), sub("orders.failed", "watcher")
        await backend.declare([s, watcher])
        await backend.publish([env({"n": 1}, group="g1")])
        [delivery] = await self.receive_some(backend, s)
        seen: list[DeadLetter] = []

        def announce(letter: DeadLetter) -> Envelope:
            seen.append(letter)
            return announcement(letter)

        letter = await backend.bury(
            delivery, error="RuntimeError: no", traceback=self.TRACEBACK, announce=announce
        )
        assert [x.id for x in seen] == [letter.id] and letter.id
        assert seen[0].envelope.data == {"n": 1} and seen[0].traceback == self.TRACEBACK
        # Kept in the store, whether or not anyone reads the topic...
        assert await backend.dead_letters(s.key) == [letter]
        assert await self.depth_of(backend, s) == QueueDepth(dead=1)
        # ...and announced on it.
        [notice] = await self.receive_some(backend, watcher)
        assert notice.envelope.topic == "orders.failed"
        assert notice.envelope.data == {
            "dead_letter_id": letter.id,
            "subscription": s.key,
            "data": {"n": 1},
            "error": "RuntimeError: no",
            "attempts": 1,
            "traceback": self.TRACEBACK,
        }
        assert notice.envelope.trace_id == TRACE and notice.envelope.group == "g1"

    async def test_an_announcement_nobody_subscribes_to_still_keeps_the_letter(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        # Seed 003: `dead_letter_queue: message.failed` and no step on message.failed.
        s = sub()
        await backend.declare([s])
        await backend.publish([env({"n": 1})])
        [delivery] = await self.receive_some(backend, s)
        letter = await backend.bury(delivery, error="E", announce=announcement)
        assert letter.id
        assert await backend.dead_letters() == [letter]
        mock_clock.jump(3600)
        assert await self.receive_now(backend, s) == []

    async def test_announced_letters_are_redriven_and_discarded_like_any_other(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, watcher = sub(), sub("orders.failed", "watcher")
        await backend.declare([s, watcher])
        await backend.publish([env({"n": 1}), env({"n": 2})])
        d1, d2 = await self.receive_some(backend, s)
        l1 = await backend.bury(d1, error="E", traceback="tb", announce=announcement)
        l2 = await backend.bury(d2, error="E", announce=announcement)
        assert len(await self.receive_some(backend, watcher)) == 2
        assert await backend.redrive([l1.id]) == 1
        [again] = await self.receive_some(backend, s)
        assert (again.envelope.data, again.attempt) == ({"n": 1}, 1)
        assert await backend.discard([l2.id]) == 1
        assert await backend.dead_letters() == []
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)

    async def test_a_bury_whose_lease_was_lost_stores_and_announces_nothing(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, watcher = sub(lease=5), sub("orders.failed", "watcher")
        await backend.declare([s, watcher])
        await backend.publish([env(1)])
        [old] = await self.receive_some(backend, s)
        mock_clock.jump(6)
        [new] = await self.receive_some(backend, s)  # handed out again: `old` lost it
        assert new.attempt == 2
        letter = await backend.bury(old, error="late", announce=announcement)
        assert letter.id == ""
        assert await backend.dead_letters() == []
        assert await self.receive_now(backend, watcher) == []
        # The new holder's burial is the one that counts, and is announced once.
        letter = await backend.bury(new, error="E", announce=announcement)
        assert [x.id for x in await backend.dead_letters()] == [letter.id]
        [notice] = await self.receive_some(backend, watcher)
        assert notice.envelope.data["attempts"] == 2

    async def test_a_bury_whose_announcement_is_refused_changes_nothing(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s, watcher = sub(), sub("orders.failed", "watcher")
        await backend.declare([s, watcher])
        await backend.publish([env({"n": 1})])
        [delivery] = await self.receive_some(backend, s)

        def not_json(letter: DeadLetter) -> Envelope:
            return attrs.evolve(announcement(letter), data={"bad": object()})

        with pytest.raises(BackendError):
            await backend.bury(delivery, error="E", announce=not_json)
        assert await backend.dead_letters() == []
        assert await self.receive_now(backend, watcher) == []
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)
        # Still held by its delivery, which can settle it as usual.
        letter = await backend.bury(delivery, error="E", announce=announcement)
        assert await backend.dead_letters() == [letter]


class StateContract(ContractTools):
    async def write(self, backend: Backend, ns: str, key: str, write: StateWrite) -> Any:
        return await backend.state_write(ns, key, write, trace_id=TRACE)

    async def test_get_set_replace_delete(self, backend: Backend, mock_clock: MockClock) -> None:
        assert await backend.state_get("pets", "p1") is None
        created = await self.write(backend, "pets", "p1", StateWrite.set({"name": "Rex"}))
        assert (created.event, created.value, created.old_value) == (
            "created",
            {"name": "Rex"},
            None,
        )
        assert (created.namespace, created.key) == ("pets", "p1")
        assert await backend.state_get("pets", "p1") == {"name": "Rex"}
        updated = await self.write(backend, "pets", "p1", StateWrite.set({"age": 3}))
        assert (updated.event, updated.value, updated.old_value) == (
            "updated",
            {"age": 3},
            {"name": "Rex"},
        )
        assert await backend.state_get("pets", "p1") == {"age": 3}
        deleted = await self.write(backend, "pets", "p1", StateWrite.delete())
        assert (deleted.event, deleted.value, deleted.old_value) == ("deleted", None, {"age": 3})
        assert await backend.state_get("pets", "p1") is None
        missing = await self.write(backend, "pets", "p1", StateWrite.delete())
        assert (missing.event, missing.value, missing.old_value) == ("", None, None)

    async def test_namespaces_and_keys_are_separate(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        await self.write(backend, "a", "k", StateWrite.set(1))
        await self.write(backend, "b", "k", StateWrite.set(2))
        await self.write(backend, "a", "k2", StateWrite.set(3))
        assert await backend.state_get("a", "k") == 1
        assert await backend.state_get("b", "k") == 2
        assert await backend.state_get("b", "k2") is None

    async def test_names_with_separators_never_collide(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        # A backend that joins namespace and key into one string must still keep these apart.
        pairs = [
            ("a:b", "c"),
            ("a", "b:c"),
            ("a.b", "c"),
            ("a", "b.c"),
            ("a/b", "c"),
            ("a", "b/c"),
            ("ns with spaces", "kéy ✓"),
        ]
        for i, (ns, key) in enumerate(pairs):
            await self.write(backend, ns, key, StateWrite.set(i))
        for i, (ns, key) in enumerate(pairs):
            assert await backend.state_get(ns, key) == i, (ns, key)
        assert await backend.state_list("a") == [("b.c", 3), ("b/c", 5), ("b:c", 1)]
        assert await backend.state_groups() == sorted({ns for ns, _ in pairs})
        assert await backend.state_clear("a", trace_id=TRACE) == 3
        assert await backend.state_get("a:b", "c") == 0

    async def test_update_with_a_dict_merges(self, backend: Backend, mock_clock: MockClock) -> None:
        change = await self.write(backend, "n", "k", StateWrite.update({"a": 1}))
        assert (change.event, change.value) == ("created", {"a": 1})
        await self.write(backend, "n", "k", StateWrite.update({"b": {"c": 2}}))
        change = await self.write(backend, "n", "k", StateWrite.update({"a": 5}))
        assert change.event == "updated"
        assert change.old_value == {"a": 1, "b": {"c": 2}}
        assert await backend.state_get("n", "k") == {"a": 5, "b": {"c": 2}}

    async def test_update_ops_apply_in_order(self, backend: Backend, mock_clock: MockClock) -> None:
        await self.write(backend, "n", "k", StateWrite.set({"count": 1, "tags": ["x"], "old": 1}))
        ops: list[dict[str, Any]] = [
            {"op": "increment", "path": "count", "value": 4},
            {"type": "decrement", "path": "count"},
            {"op": "set", "path": "profile.address.city", "value": "Lyon"},
            {"op": "merge", "path": "profile", "value": {"age": 3}},
            {"op": "remove", "path": "old"},
            {"op": "increment", "path": "stats.visits"},
            {"op": "set", "path": "ratio", "value": 0.5},
            {"op": "increment", "path": "ratio", "by": 0.25},
        ]
        change = await self.write(backend, "n", "k", StateWrite.update(ops))
        expected = {
            "count": 4,
            "tags": ["x"],
            "profile": {"address": {"city": "Lyon"}, "age": 3},
            "stats": {"visits": 1},
            "ratio": 0.75,
        }
        assert change.value == expected
        assert await backend.state_get("n", "k") == expected

    async def test_a_failing_update_changes_nothing(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        events = sub(topic=state_topic("n"), step="watcher")
        await backend.declare([events])
        await self.write(backend, "n", "k", StateWrite.set({"count": 1, "name": "Rex"}))
        await backend.ack(await self.receive_some(backend, events))
        bad = StateWrite.update(
            [
                {"op": "increment", "path": "count"},
                {"op": "increment", "path": "name"},  # a string: the whole write fails
            ]
        )
        with pytest.raises(ValueError, match="name"):
            await self.write(backend, "n", "k", bad)
        assert await backend.state_get("n", "k") == {"count": 1, "name": "Rex"}
        assert await self.receive_now(backend, events) == []

    async def test_changes_publish_state_events(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        events = sub(topic=state_topic("pets"), step="watcher")
        unrelated = sub(topic=state_topic("other"), step="watcher")
        await backend.declare([events, unrelated])
        await self.write(backend, "pets", "p1", StateWrite.set({"name": "Rex"}))
        await self.write(backend, "pets", "p1", StateWrite.update({"age": 2}))
        await self.write(backend, "pets", "p1", StateWrite.delete())
        got = await self.receive_all(backend, events)
        assert [d.envelope.data for d in got] == [
            {
                "namespace": "pets",
                "key": "p1",
                "value": {"name": "Rex"},
                "old_value": None,
                "event": "created",
            },
            {
                "namespace": "pets",
                "key": "p1",
                "value": {"name": "Rex", "age": 2},
                "old_value": {"name": "Rex"},
                "event": "updated",
            },
            {
                "namespace": "pets",
                "key": "p1",
                "value": None,
                "old_value": {"name": "Rex", "age": 2},
                "event": "deleted",
            },
        ]
        assert {d.envelope.topic for d in got} == {state_topic("pets")}
        assert {d.envelope.trace_id for d in got} == {TRACE}
        assert len({d.envelope.id for d in got}) == 3
        assert await self.receive_now(backend, unrelated) == []

    async def test_writes_that_change_nothing_publish_nothing(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        events = sub(topic=state_topic("n"), step="watcher")
        await backend.declare([events])
        missing = await self.write(backend, "n", "ghost", StateWrite.delete())
        assert missing.event == ""
        await self.write(backend, "n", "k", StateWrite.set({"a": 1, "b": [1, 2]}))
        await backend.ack(await self.receive_some(backend, events))
        same = await self.write(backend, "n", "k", StateWrite.set({"b": [1, 2], "a": 1}))
        assert same.event == ""
        assert same.value == same.old_value == {"a": 1, "b": [1, 2]}
        merged = await self.write(backend, "n", "k", StateWrite.update({"a": 1}))
        assert merged.event == ""
        assert await self.receive_now(backend, events) == []

    async def test_json_types_are_told_apart(self, backend: Backend, mock_clock: MockClock) -> None:
        # 1, 1.0 and true are equal in Python and different in JSON: each is a change.
        values: list[Any] = [1, 1.0, True, "1", [1], {"v": 1}, {"v": 1.0}]
        events = []
        for value in values:
            change = await self.write(backend, "n", "k", StateWrite.set(value))
            events.append(change.event)
            stored = await backend.state_get("n", "k")
            assert stored == value and type(stored) is type(value)
        assert events == ["created"] + ["updated"] * (len(values) - 1)

    async def test_state_round_trips_json_types(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        doc = {
            "text": "héllo ✓ 日本語 🎉",
            "float": -0.125,
            "big": 2**60,
            "none": None,
            "flag": False,
            "nested": {"list": [{"a": [1, [2, [3]]]}], "empty": []},
        }
        await self.write(backend, "n", "doc", StateWrite.set(doc))
        assert await backend.state_get("n", "doc") == doc
        for value in ("plain", 7, 2.5, [1, "x", None]):
            await self.write(backend, "n", "scalar", StateWrite.set(value))
            assert await backend.state_get("n", "scalar") == value

    async def test_values_are_isolated_from_mutation(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        doc: dict[str, Any] = {"tags": ["a"], "inner": {"x": 1}}
        change = await self.write(backend, "n", "k", StateWrite.set(doc))
        doc["tags"].append("mutated-after-set")
        change.value["inner"]["x"] = 99
        got = await backend.state_get("n", "k")
        got["tags"].append("mutated-after-get")
        [(_, listed)] = await backend.state_list("n")
        listed["inner"]["x"] = 42
        assert await backend.state_get("n", "k") == {"tags": ["a"], "inner": {"x": 1}}

    async def test_list_is_ordered_by_key(self, backend: Backend, mock_clock: MockClock) -> None:
        for key in ["b", "a", "c10", "c2"]:
            await self.write(backend, "n", key, StateWrite.set({"key": key}))
        await self.write(backend, "other", "z", StateWrite.set(0))
        assert await backend.state_list("n") == [
            ("a", {"key": "a"}),
            ("b", {"key": "b"}),
            ("c10", {"key": "c10"}),
            ("c2", {"key": "c2"}),
        ]
        assert await backend.state_list("empty") == []

    async def test_groups_lists_non_empty_namespaces_sorted(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        assert await backend.state_groups() == []
        await self.write(backend, "zoo", "k", StateWrite.set(1))
        await self.write(backend, "apes", "k", StateWrite.set(1))
        await self.write(backend, "gone", "k", StateWrite.set(1))
        await self.write(backend, "gone", "k", StateWrite.delete())
        assert await backend.state_groups() == ["apes", "zoo"]

    async def test_clear_deletes_every_key_with_events(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        events = sub(topic=state_topic("n"), step="watcher")
        await backend.declare([events])
        await self.write(backend, "n", "a", StateWrite.set(1))
        await self.write(backend, "n", "b", StateWrite.set({"x": 2}))
        await self.write(backend, "keep", "a", StateWrite.set(3))
        await backend.ack(await self.receive_all(backend, events))
        assert await backend.state_clear("n", trace_id="trace-clear") == 2
        assert await backend.state_list("n") == []
        assert await backend.state_groups() == ["keep"]
        got = await self.receive_all(backend, events)
        assert sorted(
            (d.envelope.data["key"], d.envelope.data["event"], d.envelope.data["old_value"])
            for d in got
        ) == [("a", "deleted", 1), ("b", "deleted", {"x": 2})]
        assert {d.envelope.trace_id for d in got} == {"trace-clear"}
        assert await backend.state_clear("n", trace_id=TRACE) == 0
        assert await backend.state_clear("never-used", trace_id=TRACE) == 0


class ScheduleContract(ContractTools):
    async def test_a_tick_is_claimed_exactly_once(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        at = 1_767_603_600.0
        assert await backend.claim_tick("report", at) is True
        assert await backend.claim_tick("report", at) is False
        assert await backend.claim_tick("report", at + 60) is True
        assert await backend.claim_tick("other", at) is True
        mock_clock.jump(86_400 * 400)  # a mark is kept however long ago it was claimed
        assert await backend.claim_tick("report", at) is False

    async def test_marks_are_kept_within_the_retention_of_the_latest_tick(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        # Marks may be dropped only once the step's ticks have moved on by the retention
        # (a missed tick fires only within a minute or so of its time, never that late).
        at = 1_767_603_600.0
        for n in range(10):
            assert await backend.claim_tick("report", at + n * 3600) is True
        latest = at + TICK_MARK_RETENTION - 60
        assert await backend.claim_tick("report", latest) is True
        for n in range(10):
            assert await backend.claim_tick("report", at + n * 3600) is False
        assert await backend.claim_tick("report", latest) is False
        assert await backend.claim_tick("other", at) is True  # each step keeps its own
        assert await backend.last_tick("report") == latest
        far = latest + 2 * TICK_MARK_RETENTION
        assert await backend.claim_tick("report", far) is True
        assert await backend.claim_tick("report", far) is False
        assert await backend.last_tick("report") == far
        assert await backend.claim_tick("other", at) is False  # another step's ticks stay

    async def test_concurrent_claims_have_one_winner(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        results: list[bool] = []

        async def claim() -> None:
            results.append(await backend.claim_tick("report", 1_767_603_600.0))

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(claim)
        assert sorted(results) == [False] * 9 + [True]

    async def test_the_winning_claim_publishes_its_tick_and_no_other_does(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(topic="cron.report", step="report")
        await backend.declare([s])
        at = 1_767_603_600.0
        first = env({"n": 1}, topic="cron.report")
        second = env({"n": 2}, topic="cron.report")  # another instance's envelope, same tick
        assert await backend.claim_tick("report", at, first) is True
        assert await backend.claim_tick("report", at, second) is False
        got = await self.receive_all(backend, s)
        assert [d.envelope.id for d in got] == [first.id]
        assert datas(got) == [{"n": 1}]
        assert await backend.last_tick("report") == at

    async def test_concurrent_claims_publish_the_tick_once(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(topic="cron.report", step="report")
        await backend.declare([s])

        async def claim(n: int) -> None:
            await backend.claim_tick("report", 1_767_603_600.0, env(n, topic="cron.report"))

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(claim, n)
        assert len(await self.receive_all(backend, s)) == 1

    async def test_a_non_json_tick_is_refused_and_leaves_the_tick_unclaimed(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(topic="cron.report", step="report")
        await backend.declare([s])
        at = 1_767_603_600.0
        with pytest.raises(BackendError, match="not JSON"):
            await backend.claim_tick("report", at, env({"x": object()}, topic="cron.report"))
        assert await backend.last_tick("report") is None
        assert await self.receive_all(backend, s) == []
        assert await backend.claim_tick("report", at, env("ok", topic="cron.report")) is True
        assert datas(await self.receive_all(backend, s)) == ["ok"]

    async def test_last_tick_is_the_latest_claimed(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        assert await backend.last_tick("report") is None
        await backend.claim_tick("report", 1_767_603_600.0)
        await backend.claim_tick("report", 1_767_607_200.0)
        await backend.claim_tick("report", 1_767_600_000.0)  # a late catch-up of an older tick
        await backend.claim_tick("other", 1_767_700_000.0)
        assert await backend.last_tick("report") == 1_767_607_200.0
        assert await backend.last_tick("never") is None


class SharedInstanceContract(ContractTools):
    """Two instances over the same storage (skipped unless `other_instance` is provided)."""

    @pytest.fixture
    async def other_instance(self, backend: Backend) -> Backend:
        pytest.skip(f"{type(self).__name__} provides no second instance over the same storage")

    async def test_instances_compete_for_messages(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await other_instance.declare([s])
        await backend.publish([env(i) for i in range(6)])
        mine = await self.receive_some(backend, s, max_count=3)
        theirs = await self.receive_some(other_instance, s, max_count=10)
        assert sorted(datas(mine) + datas(theirs)) == list(range(6))
        await other_instance.ack(mine)  # any instance may ack a delivery
        await backend.ack(theirs)
        assert (await other_instance.depth())[s.key] == QueueDepth()

    async def test_a_publish_on_one_instance_wakes_a_receive_on_another(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await other_instance.declare([s])

        async def publish_elsewhere() -> None:
            await other_instance.publish([env("cross")])
            mock_clock.jump(1)  # a polling backend may take up to a second to notice

        got = await self.receive_while_waiting(backend, s, publish_elsewhere, receiver=backend)
        assert datas(got) == ["cross"]

    async def test_a_lease_held_by_a_dead_instance_goes_to_another(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await other_instance.declare([s])
        await backend.publish([env("orphan")])
        await self.receive_some(other_instance, s)  # then that instance dies without an ack

        async def lease_runs_out() -> None:
            mock_clock.jump(10.5)

        got = await self.receive_while_waiting(backend, s, lease_runs_out)
        assert [(d.envelope.data, d.attempt) for d in got] == [("orphan", 2)]

    async def test_instances_share_ticks_and_state(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        assert await backend.claim_tick("report", 1_767_603_600.0) is True
        assert await other_instance.claim_tick("report", 1_767_603_600.0) is False
        assert await other_instance.last_tick("report") == 1_767_603_600.0
        await backend.state_write("n", "k", StateWrite.set({"v": 1}), trace_id=TRACE)
        assert await other_instance.state_get("n", "k") == {"v": 1}


class ModelContract(ContractTools):
    """A seeded random walk per strategy, held to the queue model (queue_model.py)."""

    @pytest.mark.parametrize("strategy", ["standard", "fifo", "priority"])
    async def test_random_walk_matches_the_queue_model(
        self, backend: Backend, clock: WallClock, strategy: QueueStrategy, mock_clock: MockClock
    ) -> None:
        await random_walk(
            backend,
            clock,
            mock_clock,
            self.receive_now,
            strategy=strategy,
            seed=f"contract-{strategy}",
            steps=150,
        )


def limited(
    rate: str = "10/s", *, burst: int = 1, topic: str = "orders", step: str = "worker"
) -> Subscription:
    count, _, unit = rate.partition("/")
    period = {"s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    return Subscription(topic, step, QueueOptions(rate_limit=RateLimit(int(count), period, burst)))


class RateLimitContract(ContractTools):
    """`receive_limited`: one token bucket per subscription, shared by every instance,
    taken in the write that leases; nothing is leased without a token."""

    async def limited_now(
        self, backend: Backend, subscription: Subscription, max_count: int = 100
    ) -> Leased | None:
        """What `receive_limited` answers without waiting: None when it would block."""
        got = await self.answer_now(lambda: backend.receive_limited(subscription, max_count))
        return got[0] if got else None

    async def test_leases_no_more_than_the_bucket_holds(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("10/s", burst=3)
        await backend.declare([s])
        await backend.publish([env(i) for i in range(10)])
        first = await self.limited_now(backend, s)
        assert first is not None
        assert datas(first.deliveries) == [0, 1, 2]
        assert first.wait == pytest.approx(0.1, abs=0.002)
        assert first.waiting is True

    async def test_without_a_token_nothing_is_leased_and_the_wait_is_told(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("10/s")
        await backend.declare([s])
        await backend.publish([env(i) for i in range(5)])
        assert [datas(x.deliveries) for x in [await self.limited_now(backend, s)] if x] == [[0]]
        mock_clock.jump(0.04)
        throttled = await self.limited_now(backend, s)
        assert throttled == Leased([], pytest.approx(0.06, abs=0.002), True)
        depth = await self.depth_of(backend, s)
        assert (depth.ready, depth.leased) == (4, 1)  # throttled messages hold no lease
        mock_clock.jump(0.06)
        again = await self.limited_now(backend, s)
        assert again is not None and datas(again.deliveries) == [1]

    async def test_tokens_refill_up_to_the_burst(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("2/s", burst=4)
        await backend.declare([s])
        await backend.publish([env(i) for i in range(20)])
        got = await self.limited_now(backend, s)
        assert got is not None and len(got.deliveries) == 4
        await backend.ack(got.deliveries)
        mock_clock.jump(60)  # a long quiet spell refills no more than the burst
        got = await self.limited_now(backend, s)
        assert got is not None and datas(got.deliveries) == [4, 5, 6, 7]
        await backend.ack(got.deliveries)
        mock_clock.jump(1)
        got = await self.limited_now(backend, s)
        assert got is not None and datas(got.deliveries) == [8, 9]
        assert got.wait == pytest.approx(0.5, abs=0.002)

    async def test_an_empty_bucket_answers_at_once_even_when_idle(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("1/m")
        await backend.declare([s])
        await backend.publish([env("only")])
        got = await self.limited_now(backend, s)
        assert got is not None and datas(got.deliveries) == ["only"]
        assert got.waiting is False  # nothing else was ready: not throttled
        idle = await self.limited_now(backend, s)
        assert idle == Leased([], pytest.approx(60, abs=0.002), False)

    async def test_with_a_token_and_nothing_ready_it_blocks_until_a_publish(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("5/s")
        await backend.declare([s])
        assert await self.limited_now(backend, s) is None  # blocks: nothing ready
        got: list[Leased] = []
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                got.append(await backend.receive_limited(s, 10))

            nursery.start_soon(receive)
            await self.quiet()
            assert got == []
            await backend.publish([env("late")])
            await self.quiet()
            if not got:
                mock_clock.jump(1)  # a polling backend may take up to a second to notice
                await self.quiet()
            nursery.cancel_scope.cancel()
        assert [datas(x.deliveries) for x in got] == [["late"]]

    async def test_starts_follow_the_rate_over_virtual_time(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("10/s")
        await backend.declare([s])
        await backend.publish([env(i) for i in range(25)])
        started: list[float] = []
        while len(started) < 25:
            got = await self.limited_now(backend, s)
            assert got is not None
            started += [trio.current_time()] * len(got.deliveries)
            await backend.ack(got.deliveries)
            mock_clock.jump(got.wait)
        assert started[-1] - started[0] == pytest.approx(2.4, abs=0.01)
        gaps = [b - a for a, b in itertools.pairwise(started)]
        assert min(gaps) == pytest.approx(0.1, abs=0.002)

    async def test_retries_and_expired_leases_take_tokens_too(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = Subscription("orders", "worker", QueueOptions(lease=5, rate_limit=RateLimit(1, 1.0)))
        await backend.declare([s])
        await backend.publish([env("a"), env("b")])
        got = await self.limited_now(backend, s)
        assert got is not None and datas(got.deliveries) == ["a"]
        await backend.retry(got.deliveries[0], delay=0, error="boom")
        mock_clock.jump(1)
        got = await self.limited_now(backend, s)
        assert got is not None and [(d.envelope.data, d.attempt) for d in got.deliveries] == [
            ("a", 2)
        ]

    async def test_buckets_are_per_subscription(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = limited("1/m", step="a"), limited("1/m", step="b")
        await backend.declare([a, b])
        await backend.publish([env(1), env(2)])
        got_a = await self.limited_now(backend, a)
        got_b = await self.limited_now(backend, b)
        assert got_a is not None and datas(got_a.deliveries) == [1]
        assert got_b is not None and datas(got_b.deliveries) == [1]

    async def test_without_a_rate_limit_it_is_receive(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([env(i) for i in range(3)])
        got = await self.limited_now(backend, s)
        assert got is not None
        assert (datas(got.deliveries), got.wait, got.waiting) == ([0, 1, 2], 0.0, False)

    async def test_a_limited_queue_files_delayed_messages_and_expires_stale_ones(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = Subscription("orders", "worker", QueueOptions(ttl=5, rate_limit=RateLimit(10, 1.0, 5)))
        await backend.declare([s])
        now = clock.now()
        await backend.publish(
            [later("soon", at=now + 2, created_at=now), env("stale", created_at=now)]
        )
        mock_clock.jump(6)  # "stale" was due at once and waited past its ttl; "soon" is due
        got = await self.limited_now(backend, s)
        assert got is not None and datas(got.deliveries) == ["soon"]
        assert got.deliveries[0].expires_at == pytest.approx(now + 7)
        [letter] = await backend.dead_letters(s.key)
        assert letter.envelope.data == "stale" and is_expired(letter)

    async def test_instances_draw_from_one_bucket(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        s = limited("4/s", burst=2)
        await backend.declare([s])
        await other_instance.declare([s])
        await backend.publish([env(i) for i in range(10)])
        mine = await self.limited_now(backend, s)
        theirs = await self.limited_now(other_instance, s)
        assert mine is not None and len(mine.deliveries) == 2
        assert theirs == Leased([], pytest.approx(0.25, abs=0.002), True)
        mock_clock.jump(0.25)
        theirs = await self.limited_now(other_instance, s)
        assert theirs is not None and len(theirs.deliveries) == 1
        mine = await self.limited_now(backend, s)
        assert mine is not None and mine.deliveries == []


def later(
    data: Any = None,
    *,
    at: float | None = None,
    expires_at: float | None = None,
    key: str | None = None,
    topic: str = "orders",
    group: str | None = None,
    created_at: float = 0.0,
) -> Envelope:
    """An envelope with a delay (`at`, epoch s), an expiry or an idempotency key."""
    return attrs.evolve(
        env(data, topic=topic, group=group, created_at=created_at),
        not_before=at,
        expires_at=expires_at,
        key=key,
    )


class DelayedContract(ContractTools):
    """Delayed emits (`not_before`): kept aside, filed when due, as if published then."""

    async def test_a_delayed_message_waits_for_its_time(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = later({"n": 1}, at=clock.now() + 10)
        assert await backend.publish([sent]) == [sent.id]
        assert await self.receive_now(backend, s) == []
        assert await self.depth_of(backend, s) == QueueDepth(scheduled=1)
        mock_clock.jump(9)
        assert await self.receive_now(backend, s) == []
        mock_clock.jump(1.5)
        [delivery] = await self.receive_some(backend, s)
        assert (delivery.envelope, delivery.attempt) == (sent, 1)
        assert await self.depth_of(backend, s) == QueueDepth(leased=1)

    async def test_delayed_messages_come_in_due_order_behind_what_was_ready(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        now = clock.now()
        await backend.publish([later("late", at=now + 30), later("early", at=now + 10)])
        await backend.publish([env("now")])
        got = await self.receive_all(backend, s)
        assert datas(got) == ["now"]
        mock_clock.jump(10)
        got += await self.receive_all(backend, s, max_count=1)
        assert datas(got) == ["now", "early"]
        await backend.ack(got)
        mock_clock.jump(20)
        assert datas(await self.receive_all(backend, s)) == ["late"]

    async def test_a_time_already_past_is_now(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([later("past", at=clock.now() - 5), later("now", at=clock.now())])
        assert datas(await self.receive_some(backend, s)) == ["past", "now"]

    async def test_a_waiting_receive_wakes_when_a_delayed_message_is_due(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])

        async def publish() -> None:
            await backend.publish([later("soon", at=clock.now() + 5)])

        async def jump() -> None:
            mock_clock.jump(5.5)

        got = await self.receive_while_waiting(backend, s, publish, jump)
        assert datas(got) == ["soon"]

    async def test_each_subscription_gets_a_delayed_message_once(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a, b])
        await backend.publish([later(1, at=clock.now() + 5)])
        mock_clock.jump(6)
        got = await self.receive_all(backend, a) + await self.receive_all(backend, b)
        assert datas(got) == [1, 1]
        await backend.ack(got)
        mock_clock.jump(60)
        assert await self.receive_now(backend, a) == []
        assert await self.receive_now(backend, b) == []

    async def test_a_delayed_message_nobody_subscribes_to_is_dropped(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        await backend.publish([later("lost", topic="nobody", at=clock.now() + 5)])
        late = sub(topic="nobody")
        await backend.declare([late])
        mock_clock.jump(6)
        assert await self.receive_now(backend, late) == []

    async def test_a_delayed_message_joins_its_fifo_group_when_due(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        await backend.publish([later("reminder", group="g", at=clock.now() + 5)])
        await backend.publish([env("a", group="g"), env("b", group="g")])
        [a] = await self.receive_some(backend, s)  # the delayed one blocks nothing
        assert a.envelope.data == "a"
        mock_clock.jump(6)
        assert await self.receive_now(backend, s) == []  # "b" is next, behind "a"
        await backend.ack([a])
        [b] = await self.receive_some(backend, s)
        await backend.ack([b])
        assert datas(await self.receive_some(backend, s)) == ["reminder"]


class IdempotencyContract(ContractTools):
    """Idempotency keys: a key taken within the window answers the first id."""

    async def test_a_repeated_key_enqueues_nothing_and_answers_the_first_id(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        first, again = later(1, key="order-42"), later(2, key="order-42")
        assert await backend.publish([first]) == [first.id]
        mock_clock.jump(100)
        assert await backend.publish([again]) == [first.id]
        assert datas(await self.receive_all(backend, s)) == [1]

    async def test_a_repeat_within_one_batch_is_a_repeat(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        a, b, c = later(1, key="k"), env(2), later(3, key="k")
        assert await backend.publish([a, b, c]) == [a.id, b.id, a.id]
        assert datas(await self.receive_all(backend, s)) == [1, 2]

    async def test_a_key_is_free_again_after_its_window(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        first, again = later(1, key="k"), later(2, key="k")
        assert await backend.publish([first], dedup_window=60) == [first.id]
        mock_clock.jump(59)
        assert await backend.publish([again], dedup_window=60) == [first.id]
        mock_clock.jump(1.5)
        assert await backend.publish([again], dedup_window=60) == [again.id]
        assert datas(await self.receive_all(backend, s)) == [1, 2]

    async def test_keys_are_per_topic(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        a, b = sub(), sub(topic="refunds")
        await backend.declare([a, b])
        x, y = later(1, key="k"), later(2, key="k", topic="refunds")
        assert await backend.publish([x, y]) == [x.id, y.id]
        assert datas(await self.receive_all(backend, a)) == [1]
        assert datas(await self.receive_all(backend, b)) == [2]

    async def test_a_repeat_of_a_delayed_message_is_a_repeat(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        first = later(1, key="k", at=clock.now() + 10)
        assert await backend.publish([first]) == [first.id]
        assert await backend.publish([later(2, key="k")]) == [first.id]
        mock_clock.jump(11)
        assert datas(await self.receive_all(backend, s)) == [1]


class ExpiryContract(ContractTools):
    """Expiry: a message not handed out by its deadline becomes an expired dead letter."""

    async def test_a_message_expired_before_its_lease_is_a_dead_letter(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = later({"n": 1}, expires_at=clock.now() + 10)
        await backend.publish([sent, env("fresh")])
        mock_clock.jump(11)
        assert datas(await self.receive_some(backend, s)) == ["fresh"]
        [letter] = await backend.dead_letters(s.key)
        assert letter.envelope == sent
        assert letter.attempts == 0
        assert letter.error.startswith("Expired: not started by ")
        assert is_expired(letter)
        assert (await self.depth_of(backend, s)).dead == 1

    async def test_a_message_leased_before_its_expiry_runs_and_is_retried(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([later(1, expires_at=clock.now() + 5)])
        await self.receive_some(backend, s)
        mock_clock.jump(11)  # the lease ran out long after the expiry: it had started
        [second] = await self.receive_some(backend, s)
        assert (second.envelope.data, second.attempt) == (1, 2)
        await backend.retry(second, delay=3, error="boom")
        mock_clock.jump(4)
        [third] = await self.receive_some(backend, s)
        assert third.attempt == 3
        assert await backend.dead_letters(s.key) == []

    async def test_ttl_expires_messages_of_one_subscription(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        short = Subscription("orders", "short", QueueOptions(ttl=5))
        patient = sub(step="patient")
        await backend.declare([short, patient])
        await backend.publish([env(1, created_at=clock.now())])
        mock_clock.jump(6)
        assert await self.receive_now(backend, short) == []
        assert datas(await self.receive_some(backend, patient)) == [1]
        [letter] = await backend.dead_letters(short.key)
        assert is_expired(letter)

    async def test_ttl_counts_from_when_a_delayed_message_is_due(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = Subscription("orders", "w", QueueOptions(ttl=5))
        await backend.declare([s])
        now = clock.now()
        await backend.publish([later(1, at=now + 10, created_at=now)])
        await backend.publish([later(2, at=now + 10.5, created_at=now)])
        mock_clock.jump(12)
        assert datas(await self.receive_some(backend, s, max_count=1)) == [1]
        mock_clock.jump(4)
        assert await self.receive_now(backend, s) == []
        assert [x.envelope.data for x in await backend.dead_letters(s.key)] == [2]

    async def test_an_expired_message_is_redriven_and_then_runs(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([later("late", expires_at=clock.now() + 1)])
        mock_clock.jump(2)
        assert await self.receive_now(backend, s) == []
        [letter] = await backend.dead_letters(s.key)
        assert await backend.redrive([letter.id]) == 1
        [delivery] = await self.receive_some(backend, s)
        assert (delivery.envelope.data, delivery.attempt) == ("late", 1)
        assert await backend.dead_letters(s.key) == []

    async def test_an_expired_message_is_discarded(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([later("late", expires_at=clock.now() + 1)])
        mock_clock.jump(2)
        assert await self.receive_now(backend, s) == []
        [letter] = await backend.dead_letters(s.key)
        assert await backend.discard([letter.id]) == 1
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_a_waiting_receive_never_gets_a_message_expired_on_arrival(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])

        async def publish() -> None:
            await backend.publish([later("stale", expires_at=clock.now() - 1), env("fresh")])

        got = await self.receive_while_waiting(backend, s, publish)
        got += await self.receive_now(backend, s)
        assert datas(got) == ["fresh"]
        await self.quiet()
        [letter] = await backend.dead_letters(s.key)
        assert (letter.envelope.data, letter.attempts) == ("stale", 0)

    async def test_an_expired_fifo_head_unblocks_its_group(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        head = later("head", group="g", expires_at=clock.now() + 1)
        await backend.publish([head, env("next", group="g")])
        mock_clock.jump(2)
        assert datas(await self.receive_some(backend, s)) == ["next"]
        assert [x.envelope.data for x in await backend.dead_letters(s.key)] == ["head"]


class SharedLaterContract(ContractTools):
    """Delays and keys across two instances (skipped unless `other_instance` is provided)."""

    @pytest.fixture
    async def other_instance(self, backend: Backend) -> Backend:
        pytest.skip(f"{type(self).__name__} provides no second instance over the same storage")

    async def test_a_delayed_message_fires_once_across_instances(
        self, backend: Backend, other_instance: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await other_instance.declare([s])
        await backend.publish([later("once", at=clock.now() + 5)])
        mock_clock.jump(6)  # both instances find it due
        mine = await self.receive_now(backend, s)
        theirs = await self.receive_now(other_instance, s)
        assert datas(mine + theirs) == ["once"]
        await backend.ack(mine + theirs)
        mock_clock.jump(60)
        assert await self.receive_now(backend, s) == await self.receive_now(other_instance, s)

    async def test_a_delayed_message_due_while_its_publisher_was_gone_fires(
        self, backend: Backend, other_instance: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await backend.publish([later("while down", at=clock.now() + 5)])
        mock_clock.jump(3600)  # the publisher is gone; the other instance starts receiving
        await other_instance.declare([s])
        assert datas(await self.receive_some(other_instance, s)) == ["while down"]

    async def test_a_key_taken_on_one_instance_is_taken_on_the_other(
        self, backend: Backend, other_instance: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await other_instance.declare([s])
        first = later(1, key="order-42")
        assert await backend.publish([first]) == [first.id]
        assert await other_instance.publish([later(2, key="order-42")]) == [first.id]
        assert datas(await self.receive_all(backend, s)) == [1]

    async def test_racing_publishes_of_one_key_enqueue_one_message(
        self, backend: Backend, other_instance: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        ids: list[str] = []

        async def publish(instance: Backend, n: int) -> None:
            ids.extend(await instance.publish([later(n, key="race")]))

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(publish, backend if n % 2 else other_instance, n)
        assert len(set(ids)) == 1
        [delivery] = await self.receive_all(backend, s)
        assert delivery.envelope.id == ids[0]


# It builds on ContractTools, defined above (a circular import that resolves in this order).
from .status_contract import (  # noqa: E402
    LaterStatusContract,
    MessageStatusContract,
    SharedInstanceStatusContract,
)


class BackendContract(
    QueueContract,
    OrderingContract,
    DeadLetterContract,
    DeadLetterAnnouncementContract,
    ModelContract,
    StateContract,
    ScheduleContract,
    SharedInstanceContract,
    MessageStatusContract,
    SharedInstanceStatusContract,
    RateLimitContract,
    DelayedContract,
    IdempotencyContract,
    ExpiryContract,
    SharedLaterContract,
    LaterStatusContract,
):
    """Every promise of the backend Protocols. Subclass as `Test<Name>Contract` and provide
    the async `backend` fixture (and optionally `other_instance`); see the module docstring."""
