"""One subscription's queue held in memory: ready messages, leases, delayed retries.

Pure synchronous bookkeeping; `MemoryBackend` adds time, waiting and copying. Every
operation is O(1) or O(log n) amortized, because the in-memory runtime pushes tens of
thousands of messages per second through here.

Where a message is, at any moment (exactly one of):
- ready: in the strategy's ready structure (standard: a deque; priority: a heap keyed by
  (-priority, seq); fifo: its group's `waiting` deque),
- leased: in `_leased` under its current receipt, with an entry in `_lease_heap`,
- delayed: in `_delayed` until its retry time.
`seq` is a backend-wide publish counter, so it orders messages across subscriptions too.

A lease is lost only when the message is handed out again: a message whose lease expired
is ready (and counts the lost attempt) but stays in `_expired` under its old receipt until
it is taken, so a late ack, retry or bury from the old holder still applies. Settling it
there marks it `settled`, a tombstone that the ready structures skip when they reach it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable

import trio

from .._envelope import JSON, DeadLetter, Envelope, QueueDepth, Subscription, expiry_of


class Message:
    """A message in one subscription's queue. `attempt` is the attempt of its next delivery."""

    __slots__ = (
        "attempt",
        "data",
        "envelope",
        "error",
        "group",
        "lease_until",
        "receipt",
        "redriven",
        "seq",
        "settled",
        "started",
        "traceback",
    )

    def __init__(self, envelope: Envelope, data: JSON, seq: int, attempt: int = 1) -> None:
        self.envelope = envelope  # its `data` may be the caller's: read `self.data` instead
        self.data = data  # private, checked JSON; never handed out (deliveries get clones)
        self.seq = seq
        self.attempt = attempt
        self.receipt = ""
        self.lease_until = 0.0
        self.settled = False  # acked/buried/retried while waiting in a ready structure
        self.redriven = False  # a re-driven copy never expires: an operator asked for it
        self.started: float | None = None  # when its latest lease began
        self.error: str | None = None  # its last failure, for its status
        self.traceback: str | None = None
        # A fifo message without a group is its own group (it blocks nothing but itself).
        self.group: Hashable = envelope.group if envelope.group is not None else (None, seq)


class _Group:
    """A fifo group: `holder` is the one message leased or delayed, `waiting` the rest in order.

    Invariant: a group whose `holder` is None and whose `waiting` holds a live message has
    its key in `SubscriptionQueue._ready_groups`. The key may also be there when it should
    not (filed twice, since held, since emptied): taking checks and skips such filings.
    """

    __slots__ = ("holder", "waiting")

    def __init__(self) -> None:
        self.holder: Message | None = None
        self.waiting: deque[Message] = deque()


class SubscriptionQueue:
    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.strategy = subscription.options.strategy
        self.lot = trio.lowlevel.ParkingLot()  # receivers waiting for something to be ready
        # Receivers in `park` (counted from before they park until they resume, so never
        # fewer than the lot holds): `wake` reads it instead of the lot's Python `__bool__`.
        self.receivers = 0
        # Receivers parked with a deadline: the cancel scope of each -> the due time (epoch s)
        # its deadline is set for. The backend moves these deadlines when leases end.
        self.parked: dict[trio.CancelScope, float] = {}
        self.dead: dict[str, DeadLetter] = {}  # insertion order = oldest first
        self.ready_count = 0
        self._standard: deque[Message] = deque()
        # (-priority, seq, entry number, message): a tombstone and the retried copy of the
        # same message share (priority, seq); the entry number keeps Messages uncompared.
        self._priority: list[tuple[int, int, int, Message]] = []
        self._entries = itertools.count()
        self._groups: dict[Hashable, _Group] = {}
        self._ready_groups: deque[Hashable] = deque()
        self._leased: dict[str, Message] = {}
        self._expired: dict[str, Message] = {}  # old receipt -> ready again, not yet taken
        # (lease_until, receipt); entries go stale on ack/extend and are skipped, and the
        # heap is rebuilt when stale entries outnumber live ones (amortized O(1)).
        self._lease_heap: list[tuple[float, str]] = []
        self._delayed: list[tuple[float, int, Message]] = []
        self._receipts = itertools.count(1)

    # -- configuration --------------------------------------------------------------------

    def reconfigure(self, subscription: Subscription) -> None:
        """Adopt new options; a strategy change re-files the ready messages in publish order."""
        self.subscription = subscription
        if subscription.options.strategy == self.strategy:
            return
        ready = sorted(self._drain_ready(), key=lambda m: m.seq)
        self.strategy = subscription.options.strategy
        if self.strategy != "fifo":
            self._groups.clear()  # holders mean nothing outside fifo; keep none that block
        for message in ready:
            self.push(message)

    def _drain_ready(self) -> list[Message]:
        drained = list(self._standard) + [entry[3] for entry in self._priority]
        for group in self._groups.values():
            drained.extend(group.waiting)
            group.waiting.clear()
        drained = [m for m in drained if not m.settled]
        self._standard.clear()
        self._priority.clear()
        self._ready_groups.clear()
        self._groups = {k: g for k, g in self._groups.items() if g.holder is not None}
        self.ready_count = 0
        return drained

    # -- waking receivers ------------------------------------------------------------------

    async def park(self) -> None:
        """Wait until `wake` is called (a receiver that found nothing to take)."""
        self.receivers += 1
        try:
            await self.lot.park()
        finally:
            self.receivers -= 1

    def wake(self) -> None:
        if self.receivers:
            self.lot.unpark_all()

    # -- ready messages ----------------------------------------------------------------------

    def push(self, message: Message) -> None:
        """A new (published or re-driven) message joins the back of the queue."""
        self.ready_count += 1
        if self.strategy == "standard":
            self._standard.append(message)
        elif self.strategy == "priority":
            self._push_priority(message)
        else:
            group = self._group(message)
            group.waiting.append(message)
            if group.holder is None and len(group.waiting) == 1:
                # (A group waiting behind a tombstone is filed already: see `settle`.)
                self._ready_groups.append(message.group)

    def _requeue(self, message: Message) -> None:
        """A message whose lease expired or whose retry time came goes back to the front."""
        self.ready_count += 1
        if self.strategy == "standard":
            self._standard.appendleft(message)
        elif self.strategy == "priority":
            self._push_priority(message)
        else:
            group = self._group(message)
            if group.holder is message:
                group.holder = None
            group.waiting.appendleft(message)
            if group.holder is None:
                self._ready_groups.appendleft(message.group)  # perhaps filed twice: harmless

    def _push_priority(self, message: Message) -> None:
        entry = (-message.envelope.priority, message.seq, next(self._entries), message)
        heapq.heappush(self._priority, entry)

    def _group(self, message: Message) -> _Group:
        group = self._groups.get(message.group)
        if group is None:
            group = self._groups[message.group] = _Group()
        return group

    def _pop_ready(self) -> Message | None:
        if self.strategy == "standard":
            while self._standard:
                message = self._standard.popleft()
                if not message.settled:
                    return message
            return None
        if self.strategy == "priority":
            while self._priority:
                message = heapq.heappop(self._priority)[3]
                if not message.settled:
                    return message
            return None
        while self._ready_groups:
            key = self._ready_groups.popleft()
            group = self._groups.get(key)
            if group is None or group.holder is not None:
                continue  # a stale filing
            waiting = group.waiting
            while waiting and waiting[0].settled:
                waiting.popleft()
            if not waiting:
                del self._groups[key]
                continue
            message = group.holder = waiting.popleft()
            return message
        return None

    def _release(self, message: Message) -> None:
        """The message left the queue (acked or buried): unblock its fifo group."""
        if self.strategy != "fifo":
            return
        group = self._groups.get(message.group)
        if group is None or group.holder is not message:
            return
        group.holder = None
        if group.waiting:
            self._ready_groups.append(message.group)
        else:
            del self._groups[message.group]

    # -- leases ----------------------------------------------------------------------------

    def take(
        self, max_count: int, now: float, lease: float, expired: list[Message] | None = None
    ) -> list[Message]:
        """Lease up to `max_count` ready messages until now + lease. A message that would be
        handed out for the first time after its expiry is taken out instead and appended to
        `expired` (when given), for the caller to keep as a dead letter."""
        taken: list[Message] = []
        until = now + lease
        ttl = self.subscription.options.ttl
        standard = self._standard if self.strategy == "standard" else None
        while len(taken) < max_count:
            if standard is not None:  # `_pop_ready` of a standard queue, without its call
                if not standard:
                    break
                message = standard.popleft()
                if message.settled:
                    continue
            else:
                popped = self._pop_ready()
                if popped is None:
                    break
                message = popped
            if (
                (ttl is not None or message.envelope.expires_at is not None)
                and expired is not None
                and message.attempt == 1
                and not message.redriven
            ):
                deadline = expiry_of(message.envelope, ttl)
                if deadline is not None and deadline <= now:
                    self.ready_count -= 1
                    self._release(message)
                    expired.append(message)
                    continue
            if message.receipt:
                self._expired.pop(message.receipt, None)  # handed out again: old lease lost
            receipt = str(next(self._receipts))
            message.receipt = receipt
            message.lease_until = until
            message.started = now
            self._leased[receipt] = message
            heapq.heappush(self._lease_heap, (until, receipt))
            taken.append(message)
        self.ready_count -= len(taken)
        if len(self._lease_heap) > 2 * len(self._leased) + 64:
            self._lease_heap = [(m.lease_until, r) for r, m in self._leased.items()]
            heapq.heapify(self._lease_heap)
        return taken

    def holder(self, receipt: str) -> Message | None:
        """The message `receipt` still holds (leased, or expired and not yet handed out
        again), without settling it; None when the lease was lost."""
        message = self._leased.get(receipt)
        return message if message is not None else self._expired.get(receipt)

    def settle(self, receipt: str) -> Message | None:
        """Take the message leased under `receipt` out of the queue (ack, bury); None when
        the lease was lost (the message was handed out again, or already settled)."""
        message = self._leased.pop(receipt, None)
        if message is not None:
            if self.strategy == "fifo":
                self._release(message)
            return message
        message = self._expired.pop(receipt, None)
        if message is not None:
            message.settled = True
            self.ready_count -= 1
        return message

    def extend(self, receipt: str, until: float) -> bool:
        message = self._leased.get(receipt)
        if message is None:
            return False
        message.lease_until = until
        heapq.heappush(self._lease_heap, (until, receipt))
        return True

    def give_back(self, receipt: str) -> bool:
        """The leased message was never started: ready again at the front, its next
        delivery the same attempt."""
        message = self._leased.pop(receipt, None)
        if message is None:
            return False
        self._requeue(message)
        return True

    def retry(
        self,
        receipt: str,
        attempt: int,
        due: float,
        now: float,
        failure: tuple[str, str | None] | None = None,
    ) -> bool:
        """Schedule the leased message again at `due`; a fifo group stays blocked meanwhile.
        `failure` (error, traceback) is kept for its status."""
        message = self._leased.pop(receipt, None)
        if message is None:
            expired = self.settle(receipt)  # leave its ready entry as a tombstone
            if expired is None:
                return False
            message = Message(expired.envelope, expired.data, expired.seq)
            if self.strategy == "fifo":
                self._group(message).holder = message  # still first in its group
        message.attempt = attempt
        if failure is not None:
            message.error, message.traceback = failure
        if due <= now:
            self._requeue(message)
        else:
            heapq.heappush(self._delayed, (due, message.seq, message))
        return True

    # -- by message id (status, cancel: O(queue length), off the hot path) ------------------

    def find(self, message_id: str) -> list[tuple[str, Message]]:
        """(where, message) of each live copy of the message here: "leased", "delayed" or
        "ready" (an expired lease waits as ready)."""
        found: list[tuple[str, Message]] = [
            ("leased", m) for m in self._leased.values() if m.envelope.id == message_id
        ]
        found += [("delayed", e[2]) for e in self._delayed if e[2].envelope.id == message_id]
        ready: list[Message] = [*self._standard, *(e[3] for e in self._priority)]
        for group in self._groups.values():
            ready.extend(group.waiting)
        found += [("ready", m) for m in ready if not m.settled and m.envelope.id == message_id]
        return found

    def cancel(self, where: str, message: Message) -> None:
        """Take the message out wherever `find` saw it; its lease (if any) is lost."""
        if where == "leased":
            self.settle(message.receipt)
        elif where == "delayed":
            self._delayed = [e for e in self._delayed if e[2] is not message]
            heapq.heapify(self._delayed)
            self._release(message)
        elif message.receipt and message.receipt in self._expired:
            self.settle(message.receipt)
        else:
            message.settled = True
            self.ready_count -= 1
        self.wake()

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Expired leases and due retries become ready (a lost lease counts as an attempt)."""
        heap = self._lease_heap
        while heap and heap[0][0] <= now:
            until, receipt = heapq.heappop(heap)
            message = self._leased.get(receipt)
            if message is None or message.lease_until != until:
                continue  # acked, settled or extended since: a stale entry
            del self._leased[receipt]
            self._expired[receipt] = message
            message.attempt += 1
            self._requeue(message)
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            self._requeue(heapq.heappop(delayed)[2])

    def next_due(self) -> float | None:
        """The earliest lease expiry or retry time, or None."""
        heap = self._lease_heap
        while heap:
            until, receipt = heap[0]
            message = self._leased.get(receipt)
            if message is not None and message.lease_until == until:
                break
            heapq.heappop(heap)
        due = heap[0][0] if heap else None
        if self._delayed and (due is None or self._delayed[0][0] < due):
            due = self._delayed[0][0]
        return due

    def depth(self) -> QueueDepth:
        return QueueDepth(
            ready=self.ready_count,
            leased=len(self._leased),
            delayed=len(self._delayed),
            dead=len(self.dead),
        )

    def pending(self) -> int:
        return self.ready_count + len(self._leased) + len(self._delayed)
