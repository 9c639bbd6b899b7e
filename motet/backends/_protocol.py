"""The seams between the runtime and its storage: small Protocols every backend implements.

A backend is one object implementing `QueueBackend`, `StateBackend` and `ScheduleBackend`,
started with `await nursery.start(backend.run, clock)`; `task_status.started()` is reported
once it is usable, and leaving `run` (by cancellation) closes it. The memory backend is the
reference implementation and the test double; `tests/backends/contract.py` is the shared
contract suite every backend passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

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
)
from .._state_writes import StateChange as StateChange
from .._state_writes import StateWrite
from .._status import CancelOutcome, MessageStatus, Settlement
from ._stream_records import StreamChange as StreamChange
from ._stream_records import StreamSnapshot

# Builds the message that announces a dead letter on its subscription's dead-letter topic.
Announce = Callable[[DeadLetter], Envelope]


@attrs.frozen
class Leased:
    """What `receive_limited` leased, and how long the rate limit holds the next lease back.

    `wait` is the seconds until the subscription's bucket holds a token again (0: one is
    there now); `waiting` says whether messages were ready that the limit held back then
    (the subscription is throttled, not merely idle)."""

    deliveries: list[Delivery]
    wait: float = 0.0
    waiting: bool = False


class QueueBackend(Protocol):
    async def declare(self, subscriptions: Sequence[Subscription]) -> None:
        """Make these subscriptions known. From now on `publish` copies each message of a
        subscription's topic into its queue. Idempotent; may be called again with more."""
        ...

    async def publish(
        self, envelopes: Sequence[Envelope], *, dedup_window: float = DEFAULT_DEDUP_WINDOW
    ) -> list[str]:
        """Durably enqueue each envelope for every declared subscription of its topic (a
        topic nobody subscribes to is dropped). When this returns, the messages survive a
        crash (for durable backends). Order of envelopes with the same group is kept.

        Returns, per envelope, the id it is enqueued under: its own, or, for an envelope
        with a `key` already taken on its topic less than `dedup_window` seconds ago (by
        the runtime's clock), the first message's id; such an envelope enqueues nothing.
        Taking a key is atomic across instances: of racing publishes, one wins.

        An envelope with `not_before` in the future is delayed: it is kept aside (durably,
        like a retry) and filed in the queues of its topic's subscriptions once that time
        comes, as if published then (a fifo group takes it in at that point). It is filed
        once across instances, and by the first `receive` after a restart when its time
        passed meanwhile. `depth` counts it as `scheduled` until it is due (then ready).

        The envelopes' data is copied or encoded before the call first lets other tasks
        run: a caller may hand over a dict that it changes afterwards (the publisher
        passes a flat payload on as is, without a copy of its own)."""
        ...

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        """Block until at least one message is ready for `subscription`, then lease up to
        `max_count` of them for `subscription.options.lease` seconds and return them.

        A message is ready when it was published or re-driven, when its retry time has come,
        or when its lease expired without an ack (then `attempt` counts the lost delivery).
        A message that would be handed out for the first time (attempt 1) after its expiry
        (`expiry_of(envelope, subscription.options.ttl)`) is not: in the same atomic step
        it becomes a dead letter with `attempts` 0 and an `expired_error` (re-driven copies
        never expire).
        `fifo`: at most one message per group is leased or delayed at a time, and within a
        group messages come in publish order (a message waiting for its retry blocks the
        rest of its group, never another group). `priority`: highest `priority` first,
        publish order among equals. `standard`: roughly publish order."""
        ...

    async def receive_limited(self, subscription: Subscription, max_count: int) -> Leased:
        """`receive` under `subscription.options.rate_limit`: a token bucket per subscription
        shared by every instance of this backend (capacity `burst`, refilled at `count /
        period` per second of the runtime's clock). Each delivery leased takes a token in the
        same atomic write as its lease, so at most as many are leased as there are whole
        tokens.

        With no token now it returns at once, leasing nothing: no deliveries, `wait` until
        the next token, and `waiting` true when messages are ready. Otherwise it blocks like
        `receive` until something is ready; `wait` > 0 says the lease took the last token.
        Without a rate limit it is `receive`, with `wait` 0."""
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """The handler returned: forget these deliveries. Acking a delivery whose lease
        was lost (the message was handed to someone else) is a no-op."""
        ...

    async def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """The handlers are still running: push the leases to now + seconds."""
        ...

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Nobody started these (a graceful stop found them leased ahead): make them ready
        again at once, as if never delivered: the next delivery has the same attempt.
        Releasing a delivery whose lease was lost is a no-op."""
        ...

    async def retry(
        self, delivery: Delivery, *, delay: float, error: str, traceback: str | None = None
    ) -> None:
        """Schedule the message again at now + delay (seconds) with attempt + 1. `error`
        (one line) and `traceback` are kept for the message's status until it settles."""
        ...

    async def bury(
        self,
        delivery: Delivery,
        *,
        error: str,
        traceback: str | None = None,
        announce: Announce | None = None,
    ) -> DeadLetter:
        """The message ended unhandled: take it out of its queue and keep it in the
        dead-letter store, in one atomic write (a crash leaves it queued or stored, never
        neither, never both). `error` is one line; `traceback` (the last attempt's, if
        any) is stored with it and read back by `dead_letters`.

        `announce`, when given, builds from the stored letter the message to publish on
        the subscription's `dead_letter_queue` topic; it is published in that same write,
        as `publish` would (dropped if nobody subscribes: the store still keeps the
        letter). It is called once, with the letter as stored (the Redis backend passes
        the delivery's envelope), and must be a pure function of it.

        A delivery whose lease was lost (the message was handed out again, or settled
        already) changes nothing and publishes nothing: the returned letter has an empty
        `id` and is not stored."""
        ...

    async def dead_letters(
        self, subscription: str | None = None, *, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, oldest first, of one subscription key or all."""
        ...

    async def redrive(self, ids: Sequence[str]) -> int:
        """Put these dead letters back in their subscription's queue, attempt reset to 1.
        Unknown ids are ignored; returns how many were re-driven."""
        ...

    async def discard(self, ids: Sequence[str]) -> int:
        """Delete these dead letters; returns how many existed."""
        ...

    async def depth(self) -> dict[str, QueueDepth]:
        """Per subscription key: ready, leased, delayed and dead counts."""
        ...


class MessageBackend(Protocol):
    """Status by message id, settled records and cancellation (see `motet._status`)."""

    async def finish(
        self, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        """`ack`, and keep each delivery's settlement (its status `done`, the handler's
        result) until its `keep_until`, in the same atomic write. A delivery whose lease was
        lost (handed out again, or cancelled meanwhile) changes nothing and keeps nothing."""
        ...

    async def message_status(self, message_id: str) -> MessageStatus | None:
        """Every delivery of the message, derived from where it is (queued, delayed,
        running, retrying, dead) or from its kept settlement; None when nothing is known."""
        ...

    async def cancel(self, message_id: str, *, keep_until: float) -> CancelOutcome:
        """Take every unsettled delivery of the message out of its queue, leased ones too
        (their lease is lost: a late ack, retry or bury changes nothing), and keep each as
        `cancelled` until `keep_until`, atomically. Settled deliveries are left as they are."""
        ...

    async def cancel_requested(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Those of these (leased) deliveries whose message was cancelled: the lease keeper
        of the instance running them stops their handlers."""
        ...


class StepBackend(QueueBackend, MessageBackend, Protocol):
    """What a step actor uses: its queue, and settled records and cancellation marks."""


class StateBackend(Protocol):
    async def state_get(self, namespace: str, key: str) -> JSON:
        """The value, or None when absent."""
        ...

    async def state_write(
        self, namespace: str, key: str, write: StateWrite, *, trace_id: str
    ) -> StateChange:
        """Apply one write atomically per key (read, `write.apply(old)`, store). When the
        value changed, publish `change_event(change, trace_id, now)` (the change as JSON on
        topic `state_topic(namespace)`), in the same transaction for durable
        backends (so a state trigger is never lost)."""
        ...

    async def state_list(self, namespace: str) -> list[tuple[str, JSON]]:
        """(key, value) pairs of a namespace, ordered by key."""
        ...

    async def state_groups(self) -> list[str]:
        """Namespaces holding at least one key, sorted."""
        ...

    async def state_clear(self, namespace: str, *, trace_id: str) -> int:
        """Delete every key of the namespace (publishing a deleted event for each, like
        `state_write` does); returns how many were deleted."""
        ...


TICK_MARK_RETENTION = 7 * 86_400.0  # s: how far behind a step's latest tick its marks are kept


class ScheduleBackend(Protocol):
    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        """Claim the cron tick (step, scheduled epoch seconds). True for exactly one caller
        across every instance sharing this backend. A mark is kept while it is within
        `TICK_MARK_RETENTION` of the step's latest claimed tick (Redis: for its `tick_ttl`,
        the same 7 days by default); older ones may be dropped, so that an every-minute cron
        does not grow the store by a mark a minute forever. Nothing claims a tick that old:
        a missed tick fires only within the clock's grace of its time.

        `tick`, when given, is published by the winning claim in the same atomic write as
        the mark: a process that dies around the claim leaves either both or neither, so a
        claimed tick is never lost and never published twice."""
        ...

    async def last_tick(self, step: str) -> float | None:
        """The scheduled time of the latest claimed tick of this step, or None."""
        ...


@runtime_checkable
class Backend(QueueBackend, MessageBackend, StateBackend, ScheduleBackend, Protocol):
    name: str

    async def run(
        self, clock: Clock, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open, report readiness with `task_status.started(self)`, serve until cancelled,
        then close. Opening failures raise `BackendUnavailable` naming what to do."""
        ...


# -- streams (Motia's streams: live records clients follow) ------------------------------
# A separate Protocol, not part of `Backend`: a backend without it still runs every step;
# only `ctx.streams` and the gateway's `/_streams/...` need it (`supports_streams`).

StreamFollower = Callable[[StreamChange], None]


class StreamBackend(Protocol):
    async def stream_set(self, stream: str, group: str, id: str, data: JSON) -> StreamChange:
        """Store `data` as item `id` of the group, atomically with the group's next event id
        and its log entry ("create", or "update" when the item existed). Every follower of
        every instance sharing the backend gets the change."""
        ...

    async def stream_delete(self, stream: str, group: str, id: str) -> StreamChange | None:
        """Delete the item: a "delete" change whose `data` is the item as it was; None, and
        no change, when it did not exist."""
        ...

    async def stream_send(
        self, stream: str, group: str, id: str | None, event: JSON
    ) -> StreamChange:
        """An ephemeral event for the group's followers (an "event" change): it gets an event
        id and a log entry, so a resuming client sees it, but no item is stored."""
        ...

    async def stream_get(self, stream: str, group: str, id: str) -> JSON:
        """The item, or None when absent."""
        ...

    async def stream_items(self, stream: str, group: str) -> StreamSnapshot:
        """The group's items ordered by id, with the event id of the last change they hold,
        read in one consistent view."""
        ...

    async def stream_since(self, stream: str, group: str, after: int) -> list[StreamChange] | None:
        """The group's changes with event id > `after`, oldest first; None when the log no
        longer reaches back to `after` + 1 (or `after` is beyond the last id): then the
        caller resends the current items instead."""
        ...

    async def stream_groups(self, stream: str) -> list[str]:
        """Groups of the stream that ever changed, sorted."""
        ...

    async def stream_follow(
        self, follower: StreamFollower, *, task_status: trio.TaskStatus[None] = ...
    ) -> None:
        """Call `follower` (synchronously, in trio) with every change made from now on by any
        instance, in event-id order within each group, until cancelled. Report readiness once
        following. A follower that falls too far behind may miss changes: subscribers notice
        the gap in event ids and catch up with `stream_since`."""
        ...


def supports_streams(backend: object) -> bool:
    return all(hasattr(backend, name) for name in ("stream_set", "stream_follow", "stream_since"))
