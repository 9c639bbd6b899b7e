"""The messages that flow between steps, and what a backend hands back for them."""

from __future__ import annotations

import os
import random
from typing import Any, Literal

import attrs

JSON = Any  # a value made of dict / list / str / int / float / bool / None

QueueStrategy = Literal["standard", "fifo", "priority"]

CRON_TOPIC_PREFIX = "cron:"
STATE_TOPIC_PREFIX = "state:"


_ids = random.Random()  # seeded from os.urandom; never used for anything secret


def new_id() -> str:
    """A random 32-hex-digit id for messages, traces and errors. 128 bits from a PRNG seeded
    from the OS (reseeded in forked children): unique in practice, and far cheaper on the hot
    path than uuid4's os.urandom call per id."""
    return f"{_ids.getrandbits(128):032x}"


os.register_at_fork(after_in_child=_ids.seed)


def check_name(value: str, what: str) -> None:
    """Refuse a name (message group, state namespace or key) that has no UTF-8 form: a
    str holding a lone surrogate, which `json.loads('"\\ud800"')` gives. Such a name cannot
    be stored as text by a backend; a JSON value can, and is kept as is."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(
                f"{what} {value!r} is not valid Unicode (it holds a lone surrogate); "
                "use a name made of characters"
            ) from None


def cron_topic(step: str) -> str:
    """The internal topic that carries the cron ticks of one step."""
    return CRON_TOPIC_PREFIX + step


def state_topic(namespace: str) -> str:
    """The internal topic that carries the change events of one state namespace."""
    return STATE_TOPIC_PREFIX + namespace


@attrs.frozen
class Envelope:
    """One emitted message. `data` is already plain JSON (the runtime unstructures it).

    `id` is unique per emitted message; each subscribing step gets its own copy with the same
    id. `created_at` is epoch seconds from the runtime's clock (never from time.time()).
    """

    topic: str
    data: JSON
    trace_id: str
    id: str = attrs.field(factory=new_id)
    group: str | None = None
    priority: int = 0
    created_at: float = 0.0


@attrs.frozen
class QueueOptions:
    """Resolved delivery options of one subscription."""

    max_retries: int = 3
    retry_delay: int = 1000  # ms, first retry; doubles per retry
    max_retry_delay: int = 300_000  # ms, cap of the exponential backoff
    concurrency: int = 10
    dead_letter_queue: str | None = None
    strategy: QueueStrategy = "standard"
    timeout: float | None = None  # s, per attempt
    lease: float = 30.0  # s, visibility timeout; extended while the handler runs
    prefetch: int | None = None  # deliveries leased ahead of free handlers; None = concurrency

    @property
    def lease_ahead(self) -> int:
        """How many deliveries an instance may lease beyond those its handlers can run now,
        so the next batch is on its way while this one runs (the step actor does so only
        while the step's handlers are fast). Standard queues only: a fifo or priority queue
        leases no more than it can run, or an instance could sit on a group head (or a lower
        priority) that another instance is free to run."""
        if self.strategy != "standard":
            return 0
        return self.concurrency if self.prefetch is None else self.prefetch


@attrs.frozen
class Subscription:
    """A (topic, step) pair: each subscription has its own queue, so fan-out is a copy."""

    topic: str
    step: str
    options: QueueOptions = QueueOptions()

    @property
    def key(self) -> str:
        return f"{self.step}@{self.topic}"


@attrs.frozen
class Delivery:
    """A leased message handed to one subscription's consumer.

    `attempt` is 1 on the first delivery. `receipt` is backend-specific (a lease token, a
    stream entry id); only the backend that issued it interprets it.
    """

    envelope: Envelope
    subscription: str  # Subscription.key
    attempt: int
    receipt: str


@attrs.frozen
class DeadLetter:
    """A message that ended unhandled: attempts exhausted, input invalid, or a non-retryable
    error. `error` is one line (`Type: message`); `traceback` is the formatted traceback of
    the last attempt when it raised (capped in size, motet's own frames collapsed)."""

    id: str  # dead-letter id, unique in the store
    subscription: str
    envelope: Envelope
    error: str
    attempts: int
    failed_at: float  # epoch seconds
    traceback: str | None = None


@attrs.frozen
class QueueDepth:
    """How many messages of one subscription are in each condition."""

    ready: int = 0
    leased: int = 0
    delayed: int = 0
    dead: int = 0

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged or buried."""
        return self.ready + self.leased + self.delayed
