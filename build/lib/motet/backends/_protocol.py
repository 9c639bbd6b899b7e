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

import trio

from .._clock import Clock
from .._envelope import JSON, DeadLetter, Delivery, Envelope, QueueDepth, Subscription
from .._state_writes import StateChange as StateChange
from .._state_writes import StateWrite

# Builds the message that announces a dead letter on its subscription's dead-letter topic.
Announce = Callable[[DeadLetter], Envelope]


class QueueBackend(Protocol):
    async def declare(self, subscriptions: Sequence[Subscription]) -> None:
        """Make these subscriptions known. From now on `publish` copies each message of a
        subscription's topic into its queue. Idempotent; may be called again with more."""
        ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Durably enqueue each envelope for every declared subscription of its topic (a
        topic nobody subscribes to is dropped). When this returns, the messages survive a
        crash (for durable backends). Order of envelopes with the same group is kept."""
        ...

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        """Block until at least one message is ready for `subscription`, then lease up to
        `max_count` of them for `subscription.options.lease` seconds and return them.

        A message is ready when it was published or re-driven, when its retry time has come,
        or when its lease expired without an ack (then `attempt` counts the lost delivery).
        `fifo`: at most one message per group is leased or delayed at a time, and within a
        group messages come in publish order (a message waiting for its retry blocks the
        rest of its group, never another group). `priority`: highest `priority` first,
        publish order among equals. `standard`: roughly publish order."""
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

    async def retry(self, delivery: Delivery, *, delay: float, error: str) -> None:
        """Schedule the message again at now + delay (seconds) with attempt + 1."""
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


class ScheduleBackend(Protocol):
    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        """Claim the cron tick (step, scheduled epoch seconds). True for exactly one caller
        across every instance sharing this backend; the mark is never released.

        `tick`, when given, is published by the winning claim in the same atomic write as
        the mark: a process that dies around the claim leaves either both or neither, so a
        claimed tick is never lost and never published twice."""
        ...

    async def last_tick(self, step: str) -> float | None:
        """The scheduled time of the latest claimed tick of this step, or None."""
        ...


@runtime_checkable
class Backend(QueueBackend, StateBackend, ScheduleBackend, Protocol):
    name: str

    async def run(
        self, clock: Clock, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open, report readiness with `task_status.started(self)`, serve until cancelled,
        then close. Opening failures raise `BackendUnavailable` naming what to do."""
        ...
