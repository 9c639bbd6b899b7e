"""The in-memory backend: the reference implementation of the backend Protocols and the
test double. Nothing survives the process; everything else behaves as the durable backends.

Values cross the boundary as copies (published data, deliveries, dead letters, state), so
a caller mutating a dict it passed in or got back never changes what is stored, exactly
as if it had been serialized. Non-JSON values are refused with `BackendError`, so a test
on this backend fails where a durable backend would.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import trio

from .._clock import Clock
from .._envelope import (
    JSON,
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    Subscription,
    new_id,
)
from .._errors import BackendError
from .._state_writes import StateChange, StateWrite, change_event, state_change
from ._json_copy import json_clone, json_copy, json_equal
from ._memory_queue import Message, SubscriptionQueue
from ._protocol import Announce, Backend

_SCHEDULE_EVERY = 16

_Staged = tuple[list[SubscriptionQueue], Envelope, JSON]  # queues, envelope, its checked data


class MemoryBackend:
    """Queues, state and cron marks in this process's memory.

    Several runtimes may share one instance (each calls `run`), which is how tests model
    several instances over one backend. Beyond the Protocols it offers synchronous
    introspection for test harnesses: `next_due()` and `pending_total()`.

    Leases: a lease is lost when its message is handed out again, as the Protocol words
    it; until then an expired delivery still settles (`ack`, `retry`, `bury`), though it
    can no longer be `extend`ed. Where the Protocols are silent: `retry`, `extend` and
    `bury` of a lost delivery are no-ops like `ack` (the message belongs to its new
    holder); `bury` then returns a record with an empty `id` that is not stored.
    """

    name = "memory"

    def __init__(self) -> None:
        self._clock: Clock | None = None
        self._running = 0
        self._calls = 0
        self._seq = itertools.count(1)
        self._queues: dict[str, SubscriptionQueue] = {}
        self._by_topic: dict[str, list[SubscriptionQueue]] = {}
        self._dead: dict[str, DeadLetter] = {}  # every subscription's, oldest first
        self._state: dict[str, dict[str, JSON]] = {}
        self._ticks: set[tuple[str, float]] = set()
        self._last_tick: dict[str, float] = {}

    def __repr__(self) -> str:
        return (
            f"MemoryBackend(subscriptions={len(self._queues)}, pending={self.pending_total()}, "
            f"dead={len(self._dead)}, running={self._running})"
        )

    async def run(
        self, clock: Clock, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._clock = clock
        self._running += 1
        try:
            task_status.started(self)
            await trio.sleep_forever()
        finally:
            self._running -= 1

    def _check_running(self) -> Clock:
        if not self._running or self._clock is None:
            raise BackendError(
                "the memory backend is not running: start it with "
                "`await nursery.start(backend.run, clock)` before using it"
            )
        return self._clock

    def _now(self) -> float:
        return self._check_running().now()

    async def _checkpoint_sometimes(self) -> None:
        # Always a cancel point; a schedule point only every _SCHEDULE_EVERY calls. publish
        # and ack are in-memory and run once per message, so a full checkpoint each time
        # would halve throughput; a loop of them still lets other tasks run regularly.
        self._calls += 1
        if self._calls % _SCHEDULE_EVERY:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.checkpoint()

    def _queue(self, key: str) -> SubscriptionQueue:
        queue = self._queues.get(key)
        if queue is None:
            known = ", ".join(sorted(self._queues)) or "none"
            raise BackendError(
                f"subscription {key!r} is not declared in the memory backend "
                f"(declared: {known}); call `declare` first"
            )
        return queue

    # -- queues ----------------------------------------------------------------------------

    async def declare(self, subscriptions: Sequence[Subscription]) -> None:
        self._check_running()
        await trio.lowlevel.checkpoint()
        for subscription in subscriptions:
            queue = self._queues.get(subscription.key)
            if queue is None:
                queue = self._queues[subscription.key] = SubscriptionQueue(subscription)
                self._by_topic.setdefault(subscription.topic, []).append(queue)
            else:
                queue.reconfigure(subscription)
                queue.wake()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self._check_running()
        await self._checkpoint_sometimes()
        self._publish_now(envelopes)

    def _publish_now(self, envelopes: Iterable[Envelope]) -> None:
        self._push(self._stage(envelopes))

    def _stage(self, envelopes: Iterable[Envelope]) -> list[_Staged]:
        # Copy (and check) every payload before enqueuing any, so a bad one enqueues nothing.
        # The copy is the message's pristine data, shared by the fan-out copies and never
        # handed out (each delivery gets its own clone); `envelope.data` is not read again.
        return [
            (queues, envelope, _detached(envelope))
            for envelope in envelopes
            if (queues := self._by_topic.get(envelope.topic))
        ]

    def _push(self, staged: list[_Staged]) -> None:
        for queues, envelope, data in staged:
            seq = next(self._seq)
            for queue in queues:
                queue.push(Message(envelope, data, seq))
                queue.wake()

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        clock_now = self._now
        self._check_running()  # before naming an undeclared subscription
        queue = self._queue(subscription.key)
        # A cancel point always; a schedule point when it parks (nothing to take) or every
        # _SCHEDULE_EVERY calls: a fetcher that finds its queue empty parks at once instead
        # of spending a scheduler round first (one round fewer per message when idle).
        await self._checkpoint_sometimes()
        floor = -math.inf
        while True:
            now = max(clock_now(), floor)
            queue.advance(now)
            messages = queue.take(max_count, now, subscription.options.lease)
            if messages:
                key = subscription.key
                return [
                    Delivery(_handed_out(m.envelope, m.data), key, m.attempt, m.receipt)
                    for m in messages
                ]
            due = queue.next_due()
            assert self._clock is not None
            deadline = math.inf if due is None else self._clock.to_trio(due)
            queue.parked_due = due
            if due is None:
                await queue.lot.park()  # no cancel scope to build: woken by a publish
                continue
            with trio.move_on_at(deadline) as waited:
                await queue.lot.park()
            if waited.cancelled_caught:
                # Woken by the deadline: the wall clock is at least `due`, even if converting
                # trio time back to epoch seconds rounds a hair short (which would spin).
                floor = due

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._check_running()
        await self._checkpoint_sometimes()
        for delivery in deliveries:
            queue = self._queue(delivery.subscription)
            if queue.settle(delivery.receipt) is not None:
                if queue.strategy == "fifo":
                    queue.wake()  # its group may have a next message
                else:
                    queue.lease_settled()

    async def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        until = self._now() + seconds
        await self._checkpoint_sometimes()
        for delivery in deliveries:
            queue = self._queue(delivery.subscription)
            if queue.extend(delivery.receipt, until):
                queue.wake()  # a shortened lease may be due before a sleeping receiver wakes

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        self._check_running()
        await self._checkpoint_sometimes()
        for delivery in deliveries:
            queue = self._queue(delivery.subscription)
            if queue.give_back(delivery.receipt):
                queue.wake()

    async def retry(self, delivery: Delivery, *, delay: float, error: str) -> None:
        now = self._now()
        await trio.lowlevel.checkpoint()
        queue = self._queue(delivery.subscription)
        if queue.retry(delivery.receipt, delivery.attempt + 1, now + max(delay, 0.0), now):
            queue.wake()  # ready now, or an earlier due time for sleeping receivers

    async def bury(
        self,
        delivery: Delivery,
        *,
        error: str,
        traceback: str | None = None,
        announce: Announce | None = None,
    ) -> DeadLetter:
        now = self._now()
        await trio.lowlevel.checkpoint()
        queue = self._queue(delivery.subscription)
        message = queue.holder(delivery.receipt)
        if message is None:
            # The lease was lost: the message belongs to its new holder; nothing is stored.
            lost = DeadLetter(
                "",
                delivery.subscription,
                delivery.envelope,
                error,
                delivery.attempt,
                now,
                traceback,
            )
            return _copied_letter(lost)
        letter = DeadLetter(
            id=new_id(),
            subscription=delivery.subscription,
            envelope=_with_data(message.envelope, message.data),
            error=error,
            attempts=delivery.attempt,
            failed_at=now,
            traceback=traceback,
        )
        # Everything that can fail (the announcement and its JSON check) comes before the
        # first change, so the step is all or nothing, like a durable backend's write.
        staged = self._stage([announce(_copied_letter(letter))]) if announce is not None else []
        queue.settle(delivery.receipt)
        queue.dead[letter.id] = letter
        self._dead[letter.id] = letter
        queue.wake()
        self._push(staged)
        return _copied_letter(letter)

    async def dead_letters(
        self, subscription: str | None = None, *, limit: int = 100
    ) -> list[DeadLetter]:
        self._check_running()
        await trio.lowlevel.checkpoint()
        if subscription is None:
            letters: Iterable[DeadLetter] = self._dead.values()
        elif subscription in self._queues:
            letters = self._queues[subscription].dead.values()
        else:
            return []
        return [_copied_letter(letter) for letter in itertools.islice(letters, max(limit, 0))]

    async def redrive(self, ids: Sequence[str]) -> int:
        self._check_running()
        await trio.lowlevel.checkpoint()
        count = 0
        for id_ in ids:
            letter = self._dead.pop(id_, None)
            if letter is None:
                continue
            queue = self._queues[letter.subscription]
            del queue.dead[id_]
            queue.push(Message(letter.envelope, letter.envelope.data, next(self._seq)))
            queue.wake()
            count += 1
        return count

    async def discard(self, ids: Sequence[str]) -> int:
        self._check_running()
        await trio.lowlevel.checkpoint()
        count = 0
        for id_ in ids:
            letter = self._dead.pop(id_, None)
            if letter is not None:
                del self._queues[letter.subscription].dead[id_]
                count += 1
        return count

    async def depth(self) -> dict[str, QueueDepth]:
        now = self._now()
        await trio.lowlevel.checkpoint()
        for queue in self._queues.values():
            queue.advance(now)
        return {key: queue.depth() for key, queue in self._queues.items()}

    def next_due(self) -> float | None:
        """Epoch seconds of the earliest lease expiry or delayed retry, or None (sync)."""
        dues = [d for q in self._queues.values() if (d := q.next_due()) is not None]
        return min(dues) if dues else None

    def pending_total(self) -> int:
        """Messages published and not yet acknowledged or buried, over every queue (sync)."""
        return sum(queue.pending() for queue in self._queues.values())

    # -- state -----------------------------------------------------------------------------

    async def state_get(self, namespace: str, key: str) -> JSON:
        self._check_running()
        await trio.lowlevel.checkpoint()
        return json_copy(self._state.get(namespace, {}).get(key))

    async def state_write(
        self, namespace: str, key: str, write: StateWrite, *, trace_id: str
    ) -> StateChange:
        now = self._now()
        await trio.lowlevel.checkpoint()
        bucket = self._state.get(namespace, {})
        old = bucket.get(key)
        # apply() works on its own copy of `old`; a ValueError leaves the stored value as is.
        new = json_copy(write.apply(old), where=f"state {namespace!r} key {key!r}")
        return self._store(namespace, key, old, new, trace_id, now)

    def _store(
        self, namespace: str, key: str, old: JSON, new: JSON, trace_id: str, now: float
    ) -> StateChange:
        if json_equal(old, new):
            return state_change(namespace, key, json_copy(old), json_copy(new), changed=False)
        if new is None:
            bucket = self._state[namespace]
            del bucket[key]
            if not bucket:
                del self._state[namespace]
        else:
            self._state.setdefault(namespace, {})[key] = new
        change = state_change(namespace, key, old, json_copy(new))
        self._publish_now([change_event(change, trace_id, now)])
        return change

    async def state_list(self, namespace: str) -> list[tuple[str, JSON]]:
        self._check_running()
        await trio.lowlevel.checkpoint()
        return [(k, json_copy(v)) for k, v in sorted(self._state.get(namespace, {}).items())]

    async def state_groups(self) -> list[str]:
        self._check_running()
        await trio.lowlevel.checkpoint()
        return sorted(namespace for namespace, bucket in self._state.items() if bucket)

    async def state_clear(self, namespace: str, *, trace_id: str) -> int:
        now = self._now()
        await trio.lowlevel.checkpoint()
        keys = sorted(self._state.get(namespace, {}))
        for key in keys:
            self._store(namespace, key, self._state[namespace][key], None, trace_id, now)
        return len(keys)

    # -- schedule --------------------------------------------------------------------------

    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        self._check_running()
        # Once per cron tick: a full scheduler round each is a cost virtual time pays per tick.
        await self._checkpoint_sometimes()
        mark = (step, float(scheduled))
        if mark in self._ticks:
            return False
        if tick is not None:
            self._publish_now([tick])  # raises before the mark on a non-JSON payload
        self._ticks.add(mark)
        if scheduled > self._last_tick.get(step, -math.inf):
            self._last_tick[step] = float(scheduled)
        return True

    async def last_tick(self, step: str) -> float | None:
        self._check_running()
        await trio.lowlevel.checkpoint()
        return self._last_tick.get(step)


def _detached(envelope: Envelope) -> JSON:
    """A checked, private copy of the envelope's data."""
    data = envelope.data
    if data is None or type(data) in (str, int, float, bool):
        return data
    return json_copy(data, where=lambda: f"message {envelope.id} on topic {envelope.topic!r}")


def _with_data(envelope: Envelope, data: JSON) -> Envelope:
    return Envelope(
        topic=envelope.topic,
        data=data,
        trace_id=envelope.trace_id,
        id=envelope.id,
        group=envelope.group,
        priority=envelope.priority,
        created_at=envelope.created_at,
    )


def _handed_out(envelope: Envelope, data: JSON) -> Envelope:
    """An envelope carrying its own clone of the pristine `data`."""
    if type(data) is dict or type(data) is list:
        return _with_data(envelope, json_clone(data))
    return envelope if envelope.data is data else _with_data(envelope, data)


def _copied_letter(letter: DeadLetter) -> DeadLetter:
    return DeadLetter(
        id=letter.id,
        subscription=letter.subscription,
        envelope=_handed_out(letter.envelope, letter.envelope.data),
        error=letter.error,
        attempts=letter.attempts,
        failed_at=letter.failed_at,
        traceback=letter.traceback,
    )
