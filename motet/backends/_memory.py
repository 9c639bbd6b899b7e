"""The in-memory backend: the reference implementation of the backend Protocols and the
test double. Nothing survives the process; everything else behaves as the durable backends.

Values cross the boundary as copies (published data, deliveries, dead letters, state), so
a caller mutating a dict it passed in or got back never changes what is stored, exactly
as if it had been serialized. Non-JSON values are refused with `BackendError`, so a test
on this backend fails where a durable backend would.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
from collections.abc import Awaitable, Iterable, Sequence

import attrs
import trio

from .._clock import Clock
from .._envelope import (
    DEFAULT_DEDUP_WINDOW,
    JSON,
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    Subscription,
    expired_error,
    expiry_of,
    new_id,
    with_data,
)
from .._errors import BackendError
from .._state_writes import StateChange, StateWrite, change_event, state_change
from .._status import (
    CANCELLED,
    CancelOutcome,
    DeliveryStatus,
    MessageStatus,
    Settlement,
    dead_state,
    scheduled_status,
)
from . import _rate as rate
from ._json_copy import FLAT_VALUES, STR_KEYS, json_clone, json_copy, json_equal
from ._memory_later import Keys, Later
from ._memory_queue import Message, SubscriptionQueue
from ._memory_streams import MemoryStreams
from ._protocol import TICK_MARK_RETENTION, Announce, Backend, Leased

_SCHEDULE_EVERY = 16

_Staged = tuple[list[SubscriptionQueue], Envelope, JSON]  # queues, envelope, its checked data


class MemoryBackend(MemoryStreams):
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
        self._ticks: dict[str, TickMarks] = {}  # step -> its claimed ticks
        self._last_tick: dict[str, float] = {}
        # message id -> subscription key -> (its settlement, the message's created_at)
        self._settled: dict[str, dict[str, tuple[Settlement, float]]] = {}
        self._settled_expiry: list[tuple[float, str, str]] = []  # (keep_until, id, sub)
        self._buckets: dict[str, rate.Bucket] = {}  # rate-limited subscription key -> bucket
        self._streams_init()
        self._later = Later()  # delayed emits, filed in their queues when due
        self._keys = Keys()  # idempotency keys within their dedup window

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

    def _checkpoint_sometimes(self) -> Awaitable[None]:
        # Always a cancel point; a schedule point only every _SCHEDULE_EVERY calls since the
        # last park (a receiver that parks gave the scheduler back: see `_park`). publish and
        # ack are in-memory and run once per message, so a full checkpoint each time would
        # halve throughput; a loop of them still lets other tasks run regularly (while one
        # task loops without yielding no other runs, so no park resets its count).
        # (trio's checkpoint itself is returned for the caller to await: one frame fewer.)
        self._calls += 1
        if self._calls % _SCHEDULE_EVERY:
            return trio.lowlevel.checkpoint_if_cancelled()
        return trio.lowlevel.checkpoint()

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

    async def publish(
        self, envelopes: Sequence[Envelope], *, dedup_window: float = DEFAULT_DEDUP_WINDOW
    ) -> list[str]:
        # Every payload is copied before the checkpoint, where other tasks may run: what is
        # queued is the data as it was at the call, even if the caller's dict changes later
        # (the publisher hands a flat payload over without a copy of its own).
        self._check_running()
        if len(envelopes) == 1:
            # The common publish (one emit): `_stage` and `_push` for one envelope, inline.
            envelope = envelopes[0]
            if envelope.key is None and envelope.not_before is None:
                queues = self._by_topic.get(envelope.topic)
                data = _detached(envelope) if queues else None
                await self._checkpoint_sometimes()
                if queues:
                    if len(queues) == 1:
                        queue = queues[0]
                        queue.push(Message(envelope, data, next(self._seq)))
                        queue.wake()
                    else:
                        self._push([(queues, envelope, data)])
                return [envelope.id]
        if any(e.key is not None or e.not_before is not None for e in envelopes):
            every = [  # every payload checked before anything changes
                (queues, e, _detached(e) if queues else None)
                for e in envelopes
                for queues in (self._by_topic.get(e.topic),)
            ]
            await self._checkpoint_sometimes()
            return self._publish_later(every, self._now(), dedup_window)
        staged = self._stage(envelopes)
        await self._checkpoint_sometimes()
        self._push(staged)  # _publish_now, one frame fewer
        return [e.id for e in envelopes]

    def _publish_later(
        self,
        staged: list[tuple[list[SubscriptionQueue] | None, Envelope, JSON]],
        now: float,
        dedup_window: float,
    ) -> list[str]:
        """Publish with idempotency keys and delays: a key seen within its window answers
        the first id and enqueues nothing; a message due later waits in `_later`. `staged`
        holds every envelope with its topic's queues (None: no subscriber) and its copy."""
        ids: list[str] = []
        for queues, envelope, data in staged:
            if envelope.key is not None:
                first = self._keys.first(envelope.topic, envelope.key, now)
                if first is not None:
                    ids.append(first)
                    continue
                self._keys.remember(envelope.topic, envelope.key, envelope.id, now + dedup_window)
            ids.append(envelope.id)
            if not queues:
                continue
            if envelope.not_before is not None and envelope.not_before > now:
                self._later.add(envelope.not_before, next(self._seq), envelope, data)
                for queue in queues:
                    queue.wake()  # sleeping receivers look again at when to wake
            else:
                self._push([(queues, envelope, data)])
        return ids

    def _file_due(self, topic: str, now: float) -> None:
        """Delayed messages of `topic` whose time came join its queues, as if published now."""
        due = self._later.pop_due(topic, now)
        queues = self._by_topic.get(topic)
        if due and queues:
            self._push([(queues, envelope, data) for envelope, data in due])

    def _keep_expired(self, queue: SubscriptionQueue, expired: list[Message], now: float) -> None:
        """Messages `take` found expired become dead letters (attempts 0, never run)."""
        ttl = queue.subscription.options.ttl
        for message in expired:
            deadline = expiry_of(message.envelope, ttl)
            letter = DeadLetter(
                id=new_id(),
                subscription=queue.subscription.key,
                envelope=with_data(message.envelope, message.data),
                error=expired_error(deadline if deadline is not None else now),
                attempts=0,
                failed_at=now,
            )
            queue.dead[letter.id] = letter
            self._dead[letter.id] = letter
        if queue.strategy == "fifo":
            queue.wake()  # their groups may have a next message

    def _publish_now(self, envelopes: Iterable[Envelope]) -> None:
        self._push(self._stage(envelopes))

    def _stage(self, envelopes: Iterable[Envelope]) -> list[_Staged]:
        # Copy (and check) every payload before enqueuing any, so a bad one enqueues nothing.
        # The copy is the message's pristine data, shared by the fan-out copies and never
        # handed out (each delivery gets its own clone); `envelope.data` is not read again.
        staged = []
        for envelope in envelopes:  # a loop, not a comprehension: most publishes hold one
            queues = self._by_topic.get(envelope.topic)
            if queues:
                staged.append((queues, envelope, _detached(envelope)))
        return staged

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
        # _SCHEDULE_EVERY calls without a park: a fetcher that finds its queue empty parks
        # at once instead of spending a scheduler round first (one round fewer per message
        # when idle).
        await self._checkpoint_sometimes()
        floor = -math.inf
        while True:
            now = max(clock_now(), floor)
            self._bring_due(subscription, queue, now)
            messages = self._take(subscription, queue, max_count, now)
            if messages:
                return self._delivered(subscription, messages)
            reached = await self._park(queue, self._next_due(subscription, queue))
            if reached is not None:
                # Woken by the deadline: the wall clock is at least `due`, even if converting
                # trio time back to epoch seconds rounds a hair short (which would spin).
                floor = reached

    async def receive_limited(self, subscription: Subscription, max_count: int) -> Leased:
        limit = subscription.options.rate_limit
        if limit is None:
            return Leased(await self.receive(subscription, max_count))
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        clock_now = self._now
        self._check_running()
        queue = self._queue(subscription.key)
        await trio.lowlevel.checkpoint()
        key = subscription.key
        floor = -math.inf
        while True:
            now = max(clock_now(), floor)
            self._bring_due(subscription, queue, now)
            bucket = rate.refill(limit, self._buckets.get(key), now)
            tokens = rate.available(limit, bucket)
            messages = (
                self._take(subscription, queue, min(max_count, tokens), now) if tokens else []
            )
            self._buckets[key] = bucket = rate.spend(bucket, len(messages))
            wait = rate.wait(limit, bucket)
            if messages or not tokens:
                return Leased(
                    self._delivered(subscription, messages),
                    wait,
                    waiting=bool(wait) and queue.ready_count > 0,
                )
            reached = await self._park(queue, self._next_due(subscription, queue))
            if reached is not None:
                floor = reached

    # The steps both receives share: what came due joins the queue, messages are taken (the
    # expired ones buried on the way), handed out as deliveries, or the receiver parks.

    def _bring_due(self, subscription: Subscription, queue: SubscriptionQueue, now: float) -> None:
        self._file_due(subscription.topic, now)
        queue.advance(now)

    def _take(
        self, subscription: Subscription, queue: SubscriptionQueue, count: int, now: float
    ) -> list[Message]:
        expired: list[Message] = []
        messages = queue.take(count, now, subscription.options.lease, expired)
        if expired:
            self._keep_expired(queue, expired, now)
        return messages

    @staticmethod
    def _delivered(subscription: Subscription, messages: list[Message]) -> list[Delivery]:
        key, ttl = subscription.key, subscription.options.ttl
        deliveries = []
        for m in messages:
            envelope = _handed_out(m.envelope, m.data)
            expires = None if ttl is None and envelope.expires_at is None else _expiry(m, ttl)
            deliveries.append(Delivery(envelope, key, m.attempt, m.receipt, expires))
        return deliveries

    def _next_due(self, subscription: Subscription, queue: SubscriptionQueue) -> float | None:
        """When something of this subscription comes due: a retry, a lease, a delayed emit."""
        due = queue.next_due()
        later = self._later.next_due(subscription.topic)
        if later is not None and (due is None or later < due):
            due = later
        return due

    async def _park(self, queue: SubscriptionQueue, due: float | None) -> float | None:
        """Wait for a publish (or a wake) or until `due` (which `_leases_settled` may move
        later); the due time when that deadline woke it. Parking is a schedule point: the
        count towards `_checkpoint_sometimes`'s next one starts over (a cron tick's claim,
        receive and ack then need no extra scheduler round of their own)."""
        self._calls = 0
        if due is None:
            await queue.park()  # no cancel scope to build: woken by a publish
            return None
        assert self._clock is not None
        with trio.move_on_at(self._clock.to_trio(due)) as waited:
            queue.parked[waited] = due
            try:
                await queue.park()
            finally:
                due = queue.parked.pop(waited, due)
        return due if waited.cancelled_caught else None

    def _leases_settled(self, queue: SubscriptionQueue) -> None:
        """Leases of `queue` ended: a receiver parked until one would have expired gets the
        deadline of what now comes due first (none: it waits for a publish), moved in place.
        Neither a wake-up for nothing when the old deadline passes nor a scheduler round to
        park again (under MockClock, either would be a clock jump or a round per message)."""
        if not queue.parked:
            return
        due = self._next_due(queue.subscription, queue)
        assert self._clock is not None
        for scope, parked in list(queue.parked.items()):
            if due is None:
                scope.deadline = math.inf
                del queue.parked[scope]
            elif due > parked:  # (settling never brings anything earlier)
                scope.deadline = self._clock.to_trio(due)
                queue.parked[scope] = due

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._check_running()
        await self._checkpoint_sometimes()
        settled = set()
        queue, last = None, None
        for delivery in deliveries:
            key = delivery.subscription
            if queue is None or key != last:  # a batch is mostly one subscription's
                queue, last = self._queue(key), key
            if queue.settle(delivery.receipt) is not None:
                if queue.strategy == "fifo":
                    queue.wake()  # its group may have a next message
                else:
                    settled.add(queue)
        for queue in settled:
            self._leases_settled(queue)

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

    async def retry(
        self, delivery: Delivery, *, delay: float, error: str, traceback: str | None = None
    ) -> None:
        now = self._now()
        await trio.lowlevel.checkpoint()
        queue = self._queue(delivery.subscription)
        due = now + max(delay, 0.0)
        if queue.retry(delivery.receipt, delivery.attempt + 1, due, now, (error, traceback)):
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
            envelope=with_data(message.envelope, message.data),
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
            message = Message(letter.envelope, letter.envelope.data, next(self._seq))
            message.redriven = True
            queue.push(message)
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
        for topic in self._later.topics():
            self._file_due(topic, now)
        for queue in self._queues.values():
            queue.advance(now)
        return {
            key: attrs.evolve(queue.depth(), scheduled=self._later.count(queue.subscription.topic))
            for key, queue in self._queues.items()
        }

    def next_due(self) -> float | None:
        """Epoch seconds of the earliest lease expiry or delayed retry, or None (sync)."""
        dues = [d for q in self._queues.values() if (d := q.next_due()) is not None]
        return min(dues) if dues else None

    def pending_total(self) -> int:
        """Messages published and not yet acknowledged or buried, over every queue (sync)."""
        return sum(queue.pending() for queue in self._queues.values())

    # -- status by message id --------------------------------------------------------------

    async def finish(
        self, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        now = self._now()
        await self._checkpoint_sometimes()
        self._expire_settled(now)
        queue, last = None, None
        settled = set()
        for delivery, settlement in zip(deliveries, settlements, strict=True):
            key = delivery.subscription
            if queue is None or key != last:  # a batch is mostly one subscription's
                queue, last = self._queue(key), key
            message = queue.settle(delivery.receipt)
            if message is None:
                continue  # the lease was lost (handed out again, or cancelled)
            if queue.strategy == "fifo":
                queue.wake()
            else:
                settled.add(queue)
            self._keep(message.envelope, key, settlement)
        for queue in settled:
            self._leases_settled(queue)  # as `ack` does

    def _keep(self, envelope: Envelope, key: str, settlement: Settlement) -> None:
        by_sub = self._settled.get(envelope.id)
        if by_sub is None:
            self._settled[envelope.id] = {key: (settlement, envelope.created_at)}
        else:
            by_sub[key] = (settlement, envelope.created_at)
        heapq.heappush(self._settled_expiry, (settlement.keep_until, envelope.id, key))

    def _expire_settled(self, now: float) -> None:
        heap = self._settled_expiry
        while heap and heap[0][0] <= now:
            _, message_id, key = heapq.heappop(heap)
            by_sub = self._settled.get(message_id)
            kept = by_sub.get(key) if by_sub else None
            if by_sub is not None and kept is not None and kept[0].keep_until <= now:
                del by_sub[key]
                if not by_sub:
                    del self._settled[message_id]

    async def message_status(self, message_id: str) -> MessageStatus | None:
        now = self._now()
        await trio.lowlevel.checkpoint()
        self._expire_settled(now)
        found: dict[str, DeliveryStatus] = {}
        topic: str | None = None
        for key, queue in self._queues.items():
            queue.advance(now)
            for where, message in queue.find(message_id):
                topic = message.envelope.topic
                found[key] = _live_status(key, where, message, queue, now)
        for letter in self._dead.values():
            if letter.envelope.id == message_id and letter.subscription not in found:
                topic = letter.envelope.topic
                found[letter.subscription] = DeliveryStatus(
                    subscription=letter.subscription,
                    state=dead_state(letter.error, letter.attempts),
                    attempts=letter.attempts,
                    enqueued_at=letter.envelope.created_at,
                    finished_at=letter.failed_at,
                    error=letter.error,
                    traceback=letter.traceback,
                    dead_letter_id=letter.id,
                )
        scheduled = self._later.find(message_id)
        if scheduled is not None:
            due, envelope = scheduled
            topic = envelope.topic
            for queue in self._by_topic.get(topic, ()):
                key = queue.subscription.key
                found.setdefault(key, scheduled_status(key, due, envelope.created_at, now))
        for key, (settlement, created) in self._settled.get(message_id, {}).items():
            found.setdefault(key, settlement.status(key, created))
            if topic is None:
                topic = key.split("@", 1)[1] if "@" in key else None
        if not found:
            return None
        return MessageStatus(message_id, topic, tuple(found[k] for k in sorted(found)))

    async def cancel(self, message_id: str, *, keep_until: float) -> CancelOutcome:
        now = self._now()
        await trio.lowlevel.checkpoint()
        self._expire_settled(now)
        cancelled: list[str] = []
        running: list[str] = []
        for key, queue in self._queues.items():
            queue.advance(now)
            for where, message in queue.find(message_id):
                queue.cancel(where, message)
                cancelled.append(key)
                if where == "leased":
                    running.append(key)
                attempts = message.attempt - (0 if where == "leased" else 1)
                settlement = Settlement(
                    "cancelled",
                    max(attempts, 0),
                    message.started,
                    now,
                    keep_until,
                    error=CANCELLED,
                )
                self._keep(message.envelope, key, settlement)
        scheduled = self._later.remove(message_id)
        if scheduled is not None:  # never filed now; its idempotency key stays taken
            _, envelope = scheduled
            for queue in self._by_topic.get(envelope.topic, ()):
                key = queue.subscription.key
                cancelled.append(key)
                kept = Settlement("cancelled", 0, None, now, keep_until, error=CANCELLED)
                self._keep(envelope, key, kept)
        settled = {key for key in self._settled.get(message_id, {}) if key not in cancelled}
        settled |= {d.subscription for d in self._dead.values() if d.envelope.id == message_id}
        return CancelOutcome(
            found=bool(cancelled or settled),
            cancelled=tuple(sorted(cancelled)),
            running=tuple(sorted(running)),
            settled=tuple(sorted(settled)),
        )

    async def cancel_requested(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        self._check_running()
        await self._checkpoint_sometimes()
        out = []
        for delivery in deliveries:
            kept = self._settled.get(delivery.envelope.id, {}).get(delivery.subscription)
            if kept is not None and kept[0].state == "cancelled":
                out.append(delivery)
        return out

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
        scheduled = float(scheduled)
        marks = self._ticks.get(step)
        if marks is None:
            marks = self._ticks[step] = TickMarks()
        if scheduled in marks.claimed:
            return False
        if tick is not None:
            self._publish_now([tick])  # raises before the mark on a non-JSON payload
        marks.add(scheduled)
        if scheduled > self._last_tick.get(step, -math.inf):
            self._last_tick[step] = float(scheduled)
        return True

    async def last_tick(self, step: str) -> float | None:
        self._check_running()
        await trio.lowlevel.checkpoint()
        return self._last_tick.get(step)


class TickMarks:
    """One step's claimed cron ticks, kept while within `TICK_MARK_RETENTION` of the
    newest: a set to answer "claimed?", and the ticks in claim order to drop the old ones
    from the front (ticks are claimed in time order but for a missed one, which is recent
    too), so that a month of every-minute ticks keeps a week of marks, not 44,640."""

    __slots__ = ("claimed", "order")

    def __init__(self) -> None:
        self.claimed: set[float] = set()
        self.order: collections.deque[float] = collections.deque()

    def add(self, scheduled: float) -> None:
        self.claimed.add(scheduled)
        self.order.append(scheduled)
        horizon = scheduled - TICK_MARK_RETENTION
        order = self.order
        while order[0] < horizon:
            self.claimed.discard(order.popleft())


def _expiry(message: Message, ttl: float | None) -> float | None:
    """When a first delivery of `message` expires unless started (re-driven ones never do)."""
    if message.attempt != 1 or message.redriven:
        return None
    if ttl is None and message.envelope.expires_at is None:
        return None
    return expiry_of(message.envelope, ttl)


def _live_status(
    key: str, where: str, message: Message, queue: SubscriptionQueue, now: float
) -> DeliveryStatus:
    """The status of a message still in its queue (see `SubscriptionQueue.find`)."""
    envelope = message.envelope
    if where == "leased":
        state, attempts = "running", message.attempt
    else:
        # `attempt` is that of its next delivery: so many were started before.
        attempts = message.attempt - 1
        if where == "delayed":
            state = "retrying" if attempts else "delayed"
        else:
            state = "retrying" if attempts else "queued"
    due = next((d for d, _, m in queue._delayed if m is message), None)
    return DeliveryStatus(
        subscription=key,
        state=state,  # type: ignore[arg-type]
        attempts=attempts,
        enqueued_at=envelope.created_at,
        started_at=message.started,
        due_at=due,
        error=message.error,
        traceback=message.traceback,
    )


def _detached(envelope: Envelope) -> JSON:
    """A checked, private copy of the envelope's data."""
    data = envelope.data
    kind = type(data)
    if (
        kind is dict
        and FLAT_VALUES.issuperset(map(type, data.values()))
        and STR_KEYS.issuperset(map(type, data))
    ):
        return data.copy()  # json_copy's first case, without its call and the error's name
    if data is None or kind is str or kind is int or kind is float or kind is bool:
        return data
    return json_copy(data, where=lambda: f"message {envelope.id} on topic {envelope.topic!r}")


def _handed_out(envelope: Envelope, data: JSON) -> Envelope:
    """An envelope carrying its own clone of the pristine `data`."""
    kind = type(data)
    if kind is dict and FLAT_VALUES.issuperset(map(type, data.values())):
        return with_data(envelope, data.copy())  # json_clone's first case, without its call
    if kind is dict or kind is list:
        return with_data(envelope, json_clone(data))
    return envelope if envelope.data is data else with_data(envelope, data)


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
