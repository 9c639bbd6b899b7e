"""The memory backend: the shared contract, plus what only the reference backend offers."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, tzinfo
from typing import Any

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
    QueueStrategy,
    Subscription,
)
from motet._errors import BackendError
from motet._status import Settlement
from motet.backends import MemoryBackend
from motet.backends._protocol import TICK_MARK_RETENTION
from motet.state import StateWrite

from .contract import BackendContract


class TestMemoryContract(BackendContract):
    quiet_seconds = 0.0  # no I/O: "all tasks blocked" already means "would block"

    @pytest.fixture
    async def backend(self, nursery: trio.Nursery, clock: WallClock) -> MemoryBackend:
        backend: MemoryBackend = await nursery.start(MemoryBackend().run, clock)
        return backend

    @pytest.fixture
    async def other_instance(
        self, nursery: trio.Nursery, clock: WallClock, backend: MemoryBackend
    ) -> MemoryBackend:
        # Instances in one process share the one object, each running it.
        shared: MemoryBackend = await nursery.start(backend.run, clock)
        return shared


def sub(
    strategy: QueueStrategy = "standard", *, lease: float = 30.0, step: str = "worker"
) -> Subscription:
    return Subscription("orders", step, QueueOptions(strategy=strategy, lease=lease))


def env(data: Any = None, *, group: str | None = None, priority: int = 0) -> Envelope:
    return Envelope("orders", data, "trace", group=group, priority=priority)


@pytest.fixture
async def backend(nursery: trio.Nursery, clock: WallClock) -> MemoryBackend:
    started: MemoryBackend = await nursery.start(MemoryBackend().run, clock)
    return started


async def test_next_due_and_pending_total_follow_leases_and_retries(
    backend: MemoryBackend, clock: WallClock, mock_clock: MockClock
) -> None:
    s = sub(lease=10)
    await backend.declare([s])
    assert (backend.next_due(), backend.pending_total()) == (None, 0)
    await backend.publish([env(1), env(2)])
    assert (backend.next_due(), backend.pending_total()) == (None, 2)
    d1, d2 = await backend.receive(s, 10)
    assert backend.next_due() == clock.now() + 10
    await backend.retry(d1, delay=4, error="boom")
    assert backend.next_due() == clock.now() + 4
    await backend.extend([d2], 2)
    assert backend.next_due() == clock.now() + 2
    await backend.ack([d2])
    assert (backend.next_due(), backend.pending_total()) == (clock.now() + 4, 1)
    mock_clock.jump(4)
    [again] = await backend.receive(s, 10)
    await backend.bury(again, error="dead")
    assert (backend.next_due(), backend.pending_total()) == (None, 0)


async def test_using_it_before_run_says_how_to_start_it() -> None:
    with pytest.raises(BackendError, match=r"nursery\.start\(backend\.run, clock\)"):
        await MemoryBackend().publish([env(1)])


async def test_using_it_after_run_ends_is_refused(clock: WallClock) -> None:
    backend = MemoryBackend()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await backend.state_write("n", "k", StateWrite.set(1), trace_id="t")
        nursery.cancel_scope.cancel()
    with pytest.raises(BackendError, match="not running"):
        await backend.state_get("n", "k")


async def test_receive_of_an_undeclared_subscription_names_it(backend: MemoryBackend) -> None:
    await backend.declare([sub(step="known")])
    with pytest.raises(BackendError, match=r"'ghost@orders' is not declared.*known@orders"):
        await backend.receive(sub(step="ghost"), 1)


@pytest.mark.parametrize("max_count", [0, -1])
async def test_receive_needs_a_positive_max_count(backend: MemoryBackend, max_count: int) -> None:
    s = sub()
    await backend.declare([s])
    with pytest.raises(ValueError, match="at least 1"):
        await backend.receive(s, max_count)


async def test_non_json_payload_is_refused_and_nothing_of_the_batch_is_queued(
    backend: MemoryBackend,
) -> None:
    s = sub()
    await backend.declare([s])
    bad = env({"when": {"at": [1, object()]}})
    with pytest.raises(BackendError, match=r"on topic 'orders' is not JSON at \$\.when\.at\[1\]"):
        await backend.publish([env("fine"), bad])
    assert backend.pending_total() == 0


async def test_tuples_become_lists_and_enums_their_values(backend: MemoryBackend) -> None:
    class Color(enum.StrEnum):
        RED = "red"

    s = sub()
    await backend.declare([s])
    await backend.publish([env({"pair": (1, 2), "color": Color.RED})])
    [delivery] = await backend.receive(s, 1)
    assert delivery.envelope.data == {"pair": [1, 2], "color": "red"}
    assert type(delivery.envelope.data["color"]) is str


async def test_non_json_state_value_is_refused(backend: MemoryBackend) -> None:
    with pytest.raises(
        BackendError, match=r"state 'n' key 'k' is not JSON at \$: .* got key 1 \(int\)"
    ):
        await backend.state_write("n", "k", StateWrite.set({1: "x"}), trace_id="t")
    assert await backend.state_get("n", "k") is None


async def test_retry_extend_and_bury_of_a_lost_lease_change_nothing(
    backend: MemoryBackend, mock_clock: MockClock
) -> None:
    s = sub(lease=10)
    await backend.declare([s])
    await backend.publish([env(1)])
    [stale] = await backend.receive(s, 1)
    mock_clock.jump(11)
    [current] = await backend.receive(s, 1)
    await backend.retry(stale, delay=0, error="late")
    await backend.extend([stale], 100)
    letter = await backend.bury(stale, error="late")
    assert letter.id == ""  # not stored: the message belongs to `current`
    assert await backend.dead_letters() == []
    assert (await backend.depth())[s.key] == QueueDepth(leased=1)
    await backend.ack([current])
    assert backend.pending_total() == 0


async def test_redeclaring_with_another_strategy_refiles_ready_messages(
    backend: MemoryBackend,
) -> None:
    await backend.declare([sub("fifo")])
    await backend.publish([env("a1", group="A", priority=1), env("a2", group="A", priority=7)])
    s = sub("priority")
    await backend.declare([s])
    got = await backend.receive(s, 10)
    assert [d.envelope.data for d in got] == ["a2", "a1"]


async def test_leaving_fifo_releases_group_blocking(backend: MemoryBackend) -> None:
    fifo = sub("fifo")
    await backend.declare([fifo])
    await backend.publish([env("a1", group="A"), env("a2", group="A")])
    [a1] = await backend.receive(fifo, 10)
    standard = sub("standard")
    await backend.declare([standard])
    assert [d.envelope.data for d in await backend.receive(standard, 10)] == ["a2"]
    await backend.ack([a1])
    assert backend.pending_total() == 1


async def test_lease_bookkeeping_stays_bounded(backend: MemoryBackend) -> None:
    # Acks leave stale entries in the lease heap; it is compacted, not left to grow.
    s = sub()
    await backend.declare([s])
    for _ in range(200):
        await backend.publish([env(i) for i in range(50)])
        await backend.ack(await backend.receive(s, 100))
    queue = backend._queues[s.key]
    assert len(queue._lease_heap) < 300  # 10,000 leases were taken


async def test_one_backend_serves_several_runs(clock: WallClock) -> None:
    backend = MemoryBackend()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        inner = trio.CancelScope()

        async def second_run() -> None:
            with inner:
                await backend.run(clock)

        nursery.start_soon(second_run)
        await trio.testing.wait_all_tasks_blocked()
        inner.cancel()  # one instance stops; the other still uses the backend
        await trio.testing.wait_all_tasks_blocked()
        assert await backend.claim_tick("report", 0.0) is True
        nursery.cancel_scope.cancel()


class EarlyClock:
    """A clock whose trio conversion runs a microsecond early, as float rounding between
    trio time and epoch seconds can; it fails loudly rather than let a spinning receive
    hang the test."""

    def __init__(self, inner: WallClock) -> None:
        self.inner = inner
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        if self.reads > 10_000:
            raise AssertionError("the clock was read 10,000 times: receive is spinning")
        return self.inner.now()

    def now_datetime(self, tz: tzinfo = UTC) -> datetime:
        return self.inner.now_datetime(tz)

    def to_trio(self, epoch: float) -> float:
        return self.inner.to_trio(epoch) - 1e-6

    async def sleep_until(self, epoch: float) -> None:
        await trio.sleep_until(self.to_trio(epoch))


async def test_a_receive_woken_by_its_deadline_does_not_spin_on_clock_rounding(
    clock: WallClock, mock_clock: MockClock
) -> None:
    early = EarlyClock(clock)
    async with trio.open_nursery() as nursery:
        backend: MemoryBackend = await nursery.start(MemoryBackend().run, early)
        s = sub(lease=10)
        await backend.declare([s])
        await backend.publish([env(1)])
        await backend.receive(s, 1)
        got: list[Delivery] = []

        async def consumer() -> None:
            got.extend(await backend.receive(s, 1))

        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        due = backend.next_due()
        assert due is not None
        # Just past the trio deadline, while the epoch reading is still a hair short of due.
        mock_clock.jump(early.to_trio(due) - trio.current_time() + 1e-7)
        assert early.inner.now() < due
        await trio.testing.wait_all_tasks_blocked()
        assert [d.attempt for d in got] == [2]
        nursery.cancel_scope.cancel()


async def test_repr_tells_what_it_holds(backend: MemoryBackend) -> None:
    await backend.declare([sub(), sub(step="other")])
    await backend.publish([env(1)])
    assert repr(backend) == "MemoryBackend(subscriptions=2, pending=2, dead=0, running=1)"


async def test_shortening_a_lease_wakes_a_waiting_receive(
    backend: MemoryBackend, mock_clock: MockClock
) -> None:
    s = sub(lease=30)
    await backend.declare([s])
    await backend.publish([env(1)])
    [delivery] = await backend.receive(s, 1)
    got: list[Delivery] = []
    async with trio.open_nursery() as nursery:

        async def consumer() -> None:
            got.extend(await backend.receive(s, 1))

        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()  # it sleeps until the 30 s lease ends
        await backend.extend([delivery], 5)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(5.5)
        await trio.testing.wait_all_tasks_blocked()
        assert [d.attempt for d in got] == [2]
        nursery.cancel_scope.cancel()


async def test_a_late_settle_applies_until_the_message_is_handed_out_again(
    backend: MemoryBackend, mock_clock: MockClock
) -> None:
    # The memory backend reads "lost" as the Protocol words it: handed to someone else. An
    # expired lease whose message nobody took yet still settles (no needless redelivery).
    s = sub(lease=10)
    await backend.declare([s])
    await backend.publish([env(1), env(2), env(3)])
    late_ack, late_retry, late_bury = await backend.receive(s, 3)
    mock_clock.jump(11)
    assert (await backend.depth())[s.key] == QueueDepth(ready=3)  # expired: ready again
    await backend.ack([late_ack])
    await backend.retry(late_retry, delay=5, error="late")
    letter = await backend.bury(late_bury, error="late")
    assert letter.id
    assert await backend.dead_letters(s.key) == [letter]
    assert (await backend.depth())[s.key] == QueueDepth(delayed=1, dead=1)
    mock_clock.jump(5)
    [again] = await backend.receive(s, 10)
    assert (again.envelope.data, again.attempt) == (2, 2)


@pytest.mark.parametrize("strategy", ["standard", "fifo", "priority"])
async def test_a_late_settle_is_skipped_in_every_strategy(
    backend: MemoryBackend, mock_clock: MockClock, strategy: QueueStrategy
) -> None:
    s = sub(strategy, lease=10)
    await backend.declare([s])
    await backend.publish([env("a1", group="A"), env("a2", group="A"), env("b1", group="B")])
    first = await backend.receive(s, 1)
    mock_clock.jump(11)
    await backend.depth()  # the expired message is filed as ready again
    await backend.ack(first)  # ... and then settled late: a tombstone the queue must skip
    got = await backend.receive(s, 10)
    assert first[0].envelope.data not in [d.envelope.data for d in got]
    assert all(d.attempt == 1 for d in got)


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of one task."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task, self.count = task, 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.count += 1


async def test_settling_the_last_lease_lifts_a_waiting_receives_deadline_in_place(
    backend: MemoryBackend, mock_clock: MockClock
) -> None:
    # A receive parked until the lease it saw would expire: the ack leaves nothing due, so
    # it waits for a publish alone, without a wake-up to park again (under MockClock, a
    # round per message) and without one when the old lease deadline passes (a clock jump).
    s = sub(lease=30)
    await backend.declare([s])
    await backend.publish([env(1)])
    [delivery] = await backend.receive(s, 1)
    got: list[Delivery] = []
    async with trio.open_nursery() as nursery:

        async def consumer(task_status: trio.TaskStatus[trio.lowlevel.Task]) -> None:
            task_status.started(trio.lowlevel.current_task())
            got.extend(await backend.receive(s, 1))

        steps = _Steps(await nursery.start(consumer))
        await trio.testing.wait_all_tasks_blocked()  # parked until the lease ends
        trio.lowlevel.add_instrument(steps)
        await backend.ack([delivery])
        mock_clock.jump(60)
        await trio.testing.wait_all_tasks_blocked()
        assert (got, steps.count) == ([], 0)
        await backend.publish([env(2)])
        await trio.testing.wait_all_tasks_blocked()
        assert [(d.envelope.data, d.attempt) for d in got] == [(2, 1)]
        trio.lowlevel.remove_instrument(steps)


async def test_settling_a_lease_moves_a_waiting_receive_to_a_delayed_emit_due_later(
    backend: MemoryBackend, clock: WallClock, mock_clock: MockClock
) -> None:
    s = sub(lease=30)
    await backend.declare([s])
    await backend.publish([env(1)])
    [delivery] = await backend.receive(s, 1)
    later = Envelope("orders", 2, "trace", created_at=clock.now(), not_before=clock.now() + 50)
    await backend.publish([later])
    got: list[Delivery] = []
    async with trio.open_nursery() as nursery:

        async def consumer() -> None:
            got.extend(await backend.receive(s, 1))

        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()  # parked until the lease ends (30 s)
        now = clock.now()
        await backend.finish([delivery], [Settlement("done", 1, now, now, now + 3600)])
        mock_clock.jump(49)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        mock_clock.jump(1.5)
        await trio.testing.wait_all_tasks_blocked()
        assert [d.envelope.data for d in got] == [2]


async def test_the_count_of_parked_receivers_holds_across_wakes_cancels_and_deadlines(
    backend: MemoryBackend, mock_clock: MockClock
) -> None:
    # `wake` skips the parking lot while no receiver is counted: a receiver must be counted
    # for as long as it can be parked, and no longer.
    s = sub(lease=30)
    await backend.declare([s])
    queue = backend._queues[s.key]
    got: list[Delivery] = []

    async def consumer() -> None:
        got.extend(await backend.receive(s, 10))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.receivers == 2
        await backend.publish([env(1)])  # both wake; one takes it, the other parks again
        await trio.testing.wait_all_tasks_blocked()
        assert ([d.envelope.data for d in got], queue.receivers) == ([1], 1)
        nursery.cancel_scope.cancel()  # a parked receive cancelled
    assert queue.receivers == 0
    assert len(got) == 1  # leased for 30 s, never settled
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)  # parked with a deadline: that lease's end
        await trio.testing.wait_all_tasks_blocked()
        assert queue.receivers == 1
        mock_clock.jump(31)  # woken by the deadline, not by a wake
        await trio.testing.wait_all_tasks_blocked()
    assert queue.receivers == 0
    assert [(d.envelope.data, d.attempt) for d in got] == [(1, 1), (1, 2)]
    await backend.publish([env(2)])  # nobody parked: nothing to wake, and nothing breaks
    assert [d.envelope.data for d in await backend.receive(s, 10)] == [2]


async def test_a_loop_of_publishes_yields_regularly_while_a_receiver_parks_and_wakes(
    backend: MemoryBackend,
) -> None:
    # publish/ack are a schedule point every 16 calls since the last park (a park is one):
    # a task that publishes in a loop without awaiting anything else must still let other
    # tasks run, even when each publish wakes a receiver that then parks again.
    sub = Subscription(topic="t", step="S")
    await backend.declare([sub])
    other_rounds = 0
    received = 0
    done = False

    async def receiver() -> None:
        nonlocal received
        while not done:
            for delivery in await backend.receive(sub, 100):
                received += 1
                await backend.ack([delivery])

    async def bystander() -> None:
        nonlocal other_rounds
        while not done:
            other_rounds += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receiver)
        nursery.start_soon(bystander)
        for _ in range(3):  # the receiver parks, the bystander runs
            await trio.lowlevel.checkpoint()
        before = other_rounds
        for n in range(160):
            await backend.publish([Envelope(topic="t", data={"n": n}, trace_id="x")])
        ran = other_rounds - before
        done = True
        nursery.cancel_scope.cancel()
    # A round at least every 16 publishes since the receiver last parked. trio runs each
    # batch of tasks in a random order, so where the receiver parks (and the count starts
    # over) moves by a round: 9 to 11 rounds in 3,000 runs, 0 without the schedule point.
    assert ran >= 160 // 16 - 1


async def test_cron_marks_keep_a_week_not_the_whole_history(backend: MemoryBackend) -> None:
    # An every-minute cron for 30 days (43,200 claims): a week of marks stays, and an older
    # tick of it could be claimed again, which nothing does (missed ticks fire within grace).
    start = 1_767_225_600.0
    for minute in range(30 * 1440):
        assert await backend.claim_tick("minutely", start + minute * 60) is True
    marks = backend._ticks["minutely"]
    assert len(marks.claimed) == len(marks.order) == 7 * 1440 + 1
    latest = start + (30 * 1440 - 1) * 60
    assert min(marks.claimed) == latest - TICK_MARK_RETENTION
    assert await backend.claim_tick("minutely", latest - TICK_MARK_RETENTION) is False
    assert await backend.last_tick("minutely") == latest
