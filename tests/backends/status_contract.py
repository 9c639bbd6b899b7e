"""The contract of `MessageBackend` (status by id, settled records, cancellation), part of
`BackendContract` in contract.py: every backend derives the live states from where a
message is, keeps a settled record until its `keep_until`, and cancels atomically."""

from __future__ import annotations

import json

import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import QueueDepth
from motet._status import CANCELLED, Settlement
from motet.backends._protocol import Backend, Leased

from .conftest import ANCHOR
from .contract import ContractTools, datas, env, later, limited, sub

T0 = ANCHOR.timestamp()


def done(attempts: int = 1, result: object = None, keep: float = 3600.0) -> Settlement:
    text = None if result is None else json.dumps(result)
    return Settlement("done", attempts, T0, T0 + 1, T0 + keep, text)


class MessageStatusContract(ContractTools):
    async def test_unknown_id_has_no_status(self, backend: Backend, mock_clock: MockClock) -> None:
        await backend.declare([sub()])
        assert await backend.message_status("0123456789abcdef0123456789abcdef") is None
        outcome = await backend.cancel("no-such-id", keep_until=T0 + 60)
        assert not outcome.found and not outcome.any
        assert "no message no-such-id" in outcome.describe("no-such-id")

    async def test_queued_then_running_then_done_with_result(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = env({"n": 1}, created_at=T0 - 5)
        await backend.publish([sent])
        status = await backend.message_status(sent.id)
        assert status is not None and status.topic == "orders" and status.state == "queued"
        [queued] = status.deliveries
        assert (queued.subscription, queued.state, queued.attempts) == (s.key, "queued", 0)
        assert queued.enqueued_at == T0 - 5
        [delivery] = await self.receive_some(backend, s)
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("running", 1)]
        await backend.finish([delivery], [done(result={"ok": [1, 2]})])
        assert await self.depth_of(backend, s) == QueueDepth()
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "done", status
        [finished] = status.deliveries
        assert finished.result == {"ok": [1, 2]} and finished.attempts == 1
        assert (finished.started_at, finished.finished_at) == (T0, T0 + 1)

    async def test_fan_out_shows_each_delivery(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a, b])
        sent = env("x")
        await backend.publish([sent])
        [da] = await self.receive_some(backend, a)
        await backend.finish([da], [done(result=7)])
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.subscription, d.state) for d in status.deliveries] == [
            (a.key, "done"),
            (b.key, "queued"),
        ]
        assert status.state == "queued"  # the least advanced delivery

    async def test_a_settled_record_expires(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        await backend.finish([delivery], [done(keep=60)])
        assert await backend.message_status(sent.id) is not None
        mock_clock.jump(61)
        assert await backend.message_status(sent.id) is None

    async def test_finish_of_a_lost_lease_keeps_nothing(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [stale] = await self.receive_some(backend, s)
        mock_clock.jump(11)
        [current] = await self.receive_some(backend, s)
        await backend.finish([stale], [done(result="stale")])
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("running", 2)]
        await backend.finish([current], [done(attempts=2)])
        status = await backend.message_status(sent.id)
        assert status is not None and status.deliveries[0].result is None

    async def test_retrying_keeps_the_error_and_traceback(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        await backend.retry(delivery, delay=30, error="ValueError: boom", traceback="Trace\n")
        status = await backend.message_status(sent.id)
        assert status is not None
        [retrying] = status.deliveries
        assert (retrying.state, retrying.attempts) == ("retrying", 1)
        assert retrying.error == "ValueError: boom"
        assert retrying.traceback in ("Trace\n", None)  # a backend may keep the line only
        assert retrying.due_at is None or abs(retrying.due_at - (T0 + 30)) < 0.01

    async def test_dead_shows_the_letter(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        letter = await backend.bury(delivery, error="KeyError: 'x'", traceback="tb")
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "dead"
        [dead] = status.deliveries
        assert (dead.error, dead.traceback, dead.dead_letter_id) == (
            "KeyError: 'x'",
            "tb",
            letter.id,
        )
        assert dead.attempts == 1

    async def test_cancel_a_queued_message(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        keep, gone = env("keep"), env("gone")
        await backend.publish([keep, gone])
        outcome = await backend.cancel(gone.id, keep_until=T0 + 600)
        assert outcome.found and outcome.cancelled == (s.key,) and outcome.running == ()
        assert await self.depth_of(backend, s) == QueueDepth(ready=1)
        assert datas(await self.receive_all(backend, s)) == ["keep"]
        status = await backend.message_status(gone.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("cancelled", 0)]
        again = await backend.cancel(gone.id, keep_until=T0 + 600)
        assert again.found and not again.any and again.settled == (s.key,)
        assert "already over" in again.describe(gone.id)

    async def test_cancel_a_running_message_loses_its_lease(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=10)
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        assert await backend.cancel_requested([delivery]) == []
        outcome = await backend.cancel(sent.id, keep_until=T0 + 600)
        assert outcome.cancelled == (s.key,) and outcome.running == (s.key,)
        assert [d.receipt for d in await backend.cancel_requested([delivery])] == [delivery.receipt]
        # The handler's late outcome changes nothing: not retried, not dead, not done.
        await backend.retry(delivery, delay=0, error="late")
        await backend.bury(delivery, error="late")
        await backend.finish([delivery], [done()])
        mock_clock.jump(11)
        assert await self.receive_now(backend, s) == []
        assert await backend.dead_letters() == []
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("cancelled", 1)]

    async def test_cancel_a_retrying_message(self, backend: Backend, mock_clock: MockClock) -> None:
        s = sub()
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        await backend.retry(delivery, delay=5, error="E: x")
        outcome = await backend.cancel(sent.id, keep_until=T0 + 600)
        assert outcome.cancelled == (s.key,) and outcome.running == ()
        mock_clock.jump(6)
        assert await self.receive_now(backend, s) == []
        assert await self.depth_of(backend, s) == QueueDepth()

    async def test_cancel_after_done_is_a_no_op(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = env(1)
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        await backend.finish([delivery], [done(result=1)])
        outcome = await backend.cancel(sent.id, keep_until=T0 + 600)
        assert outcome.found and not outcome.any and outcome.settled == (s.key,)
        status = await backend.message_status(sent.id)
        assert status is not None and status.deliveries[0].state == "done"

    async def test_cancel_a_fifo_head_lets_its_group_go_on(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(strategy="fifo")
        await backend.declare([s])
        first, second = env(1, group="g"), env(2, group="g")
        await backend.publish([first, second])
        [head] = await self.receive_some(backend, s)
        assert head.envelope.id == first.id
        await backend.cancel(first.id, keep_until=T0 + 600)
        assert datas(await self.receive_some(backend, s)) == [2]


class SharedInstanceStatusContract(ContractTools):
    """Status and cancellation across two instances over the same storage (skipped unless
    the backend's test class provides `other_instance`)."""

    async def test_a_cancel_on_one_instance_reaches_the_lease_holder_on_another(
        self, backend: Backend, other_instance: Backend, mock_clock: MockClock
    ) -> None:
        s = sub(lease=30)
        await backend.declare([s])
        await other_instance.declare([s])
        sent = env({"n": 1})
        await backend.publish([sent])
        [delivery] = await self.receive_some(backend, s)
        status = await other_instance.message_status(sent.id)
        assert status is not None and status.deliveries[0].state == "running"
        outcome = await other_instance.cancel(sent.id, keep_until=T0 + 600)
        assert outcome.running == (s.key,)
        assert await backend.cancel_requested([delivery]) == [delivery]
        await backend.finish([delivery], [done()])
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "cancelled"

    async def test_a_delayed_message_cancelled_on_one_instance_fires_on_neither(
        self, backend: Backend, other_instance: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        await other_instance.declare([s])
        sent = later("never", at=clock.now() + 5)
        await backend.publish([sent])
        status = await other_instance.message_status(sent.id)
        assert status is not None and status.state == "delayed"
        assert (await other_instance.cancel(sent.id, keep_until=T0 + 600)).cancelled == (s.key,)
        mock_clock.jump(6)
        assert await self.receive_now(backend, s) == []
        assert await self.receive_now(other_instance, s) == []
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "cancelled"


class LaterStatusContract(ContractTools):
    """Status and cancellation of delayed, keyed and expired messages: a delayed message
    (kept once per topic until due) shows one `delayed` delivery per subscription of its
    topic; cancelling it removes it for good and keeps its idempotency key taken; an
    expired dead letter reads `expired`; a rate-limited lease reads like any other."""

    async def test_a_delayed_message_shows_a_delayed_delivery_per_subscription(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a, b])
        now = clock.now()
        sent = later({"n": 1}, at=now + 10, created_at=now)
        await backend.publish([sent])
        status = await backend.message_status(sent.id)
        assert status is not None and status.topic == "orders" and status.state == "delayed"
        assert [(d.subscription, d.state, d.attempts) for d in status.deliveries] == [
            (a.key, "delayed", 0),
            (b.key, "delayed", 0),
        ]
        for delivery in status.deliveries:
            assert delivery.due_at is not None and abs(delivery.due_at - (now + 10)) < 0.01
            assert delivery.enqueued_at == now
        mock_clock.jump(11)
        [got] = await self.receive_some(backend, a)
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.subscription, d.state) for d in status.deliveries] == [
            (a.key, "running"),
            (b.key, "queued"),
        ]
        await backend.ack([got])

    async def test_cancel_a_delayed_message_removes_it_for_good(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        a, b = sub(step="a"), sub(step="b")
        await backend.declare([a, b])
        now = clock.now()
        keep, gone = later("keep", at=now + 10), later("gone", at=now + 10)
        await backend.publish([keep, gone])
        outcome = await backend.cancel(gone.id, keep_until=now + 600)
        assert outcome.found and outcome.cancelled == (a.key, b.key)
        assert outcome.running == ()
        assert await self.depth_of(backend, a) == QueueDepth(scheduled=1)
        status = await backend.message_status(gone.id)
        assert status is not None and status.state == "cancelled"
        assert [(d.subscription, d.state, d.attempts) for d in status.deliveries] == [
            (a.key, "cancelled", 0),
            (b.key, "cancelled", 0),
        ]
        assert all(d.error == CANCELLED for d in status.deliveries)
        mock_clock.jump(11)
        got_a, got_b = await self.receive_all(backend, a), await self.receive_all(backend, b)
        assert datas(got_a) == datas(got_b) == ["keep"]
        await backend.ack(got_a + got_b)
        mock_clock.jump(60)
        assert await self.receive_now(backend, a) == []
        status = await backend.message_status(gone.id)
        assert status is not None and {d.state for d in status.deliveries} == {"cancelled"}
        again = await backend.cancel(gone.id, keep_until=now + 600)
        assert again.found and not again.any and again.settled == (a.key, b.key)

    async def test_a_cancelled_keyed_message_keeps_its_key_taken(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        now = clock.now()
        first = later(1, key="order-42", at=now + 10)
        assert await backend.publish([first]) == [first.id]
        assert (await backend.cancel(first.id, keep_until=now + 600)).cancelled == (s.key,)
        # Within the window a repeat answers the cancelled message's id and enqueues nothing:
        # cancelling says "do not run this", not "let the next emit run it".
        assert await backend.publish([later(2, key="order-42")]) == [first.id]
        mock_clock.jump(11)
        assert await self.receive_now(backend, s) == []
        status = await backend.message_status(first.id)
        assert status is not None and status.state == "cancelled"

    async def test_a_cancelled_queued_keyed_message_keeps_its_key_taken(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        first = later(1, key="k")
        await backend.publish([first])
        await backend.cancel(first.id, keep_until=clock.now() + 600)
        assert await backend.publish([later(2, key="k")]) == [first.id]
        assert await self.receive_now(backend, s) == []

    async def test_an_expired_dead_letter_reads_expired(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = later("late", expires_at=clock.now() + 1)
        await backend.publish([sent])
        mock_clock.jump(2)
        assert await self.receive_now(backend, s) == []
        [letter] = await backend.dead_letters(s.key)
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "expired"
        [expired] = status.deliveries
        assert (expired.state, expired.attempts, expired.dead_letter_id) == (
            "expired",
            0,
            letter.id,
        )
        assert expired.error is not None and expired.error.startswith("Expired: not started by")
        assert expired.finished_at is not None
        outcome = await backend.cancel(sent.id, keep_until=clock.now() + 600)
        assert outcome.found and not outcome.any and outcome.settled == (s.key,)

    async def test_a_redriven_expired_letter_is_queued_then_runs(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        await backend.declare([s])
        sent = later("late", expires_at=clock.now() + 1)
        await backend.publish([sent])
        mock_clock.jump(2)
        assert await self.receive_now(backend, s) == []
        [letter] = await backend.dead_letters(s.key)
        await backend.redrive([letter.id])
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("queued", 0)]
        [delivery] = await self.receive_some(backend, s)
        status = await backend.message_status(sent.id)
        assert status is not None
        assert [(d.state, d.attempts) for d in status.deliveries] == [("running", 1)]
        await backend.finish([delivery], [done_at(clock.now())])
        status = await backend.message_status(sent.id)
        assert status is not None and status.state == "done"

    async def test_a_rate_limited_lease_reads_running_and_can_be_cancelled(
        self, backend: Backend, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = limited("10/s", burst=5)
        await backend.declare([s])
        plain, throttled = env("plain"), env("throttled")
        await backend.publish([plain, throttled])
        [by_receive] = await self.receive_some(backend, s, max_count=1)
        got: list[Leased] = []
        with trio.move_on_after(5):
            got.append(await backend.receive_limited(s, 10))
        [leased] = got
        [delivery] = leased.deliveries
        assert (by_receive.envelope.id, delivery.envelope.id) == (plain.id, throttled.id)
        # `receive_limited` records what status reads exactly as `receive` does.
        shapes = []
        for sent in (plain, throttled):
            status = await backend.message_status(sent.id)
            assert status is not None
            [running] = status.deliveries
            assert (running.state, running.attempts) == ("running", 1)
            started = running.started_at
            assert started is None or abs(started - clock.now()) < 1
            shapes.append(started is None)
        assert shapes[0] == shapes[1]
        outcome = await backend.cancel(throttled.id, keep_until=clock.now() + 600)
        assert outcome.running == (s.key,)
        assert await backend.cancel_requested([delivery, by_receive]) == [delivery]
        await backend.finish([delivery], [done_at(clock.now())])
        status = await backend.message_status(throttled.id)
        assert status is not None and status.state == "cancelled"
        assert status.deliveries[0].attempts == 1


def done_at(now: float) -> Settlement:
    return Settlement("done", 1, now, now, now + 3600)
