"""The messages that flow between steps, and what a backend hands back for them."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

JSON = Any  # a value made of dict / list / str / int / float / bool / None

QueueStrategy = Literal["standard", "fifo", "priority"]

CRON_TOPIC_PREFIX = "cron:"
STATE_TOPIC_PREFIX = "state:"


# Deliveries leased ahead per handler slot when `prefetch` is unset (standard queues, and
# only while handlers are fast: at most 4 x 50 ms of work per slot held back from other
# instances). Against one per slot: a third fewer backend round trips per delivery; Redis
# drain 1.26x with 0.7x the worker CPU per job, in-process drain 1.3x (bench/RESULTS.md).
PREFETCH_PER_SLOT = 4
DEFAULT_DEDUP_WINDOW = 86_400.0  # s, how long an idempotency key is remembered (24 h)
EXPIRED_ERROR = "Expired"  # how an expired message's dead letter's error starts

_ids = random.Random()  # seeded from os.urandom; never used for anything secret

# new_id's layout, UUIDv7's (RFC 9562) without the dashes: 48 bits of Unix milliseconds,
# the version nibble 7, 12 random bits, the variant bits 10, 62 random bits.
_V7_RANDOM = ((1 << 80) - 1) ^ (0xF << 76) ^ (0x3 << 62)  # the random bits below the time
_V7_MARKS = (0x7 << 76) | (0x2 << 62)  # version 7, RFC variant


def new_id() -> str:
    """A 32-hex-digit id for messages, traces, runs and errors, time-ordered: a UUIDv7 in
    hex (Unix milliseconds, then 74 random bits). Ids made later sort after, so a store
    keyed or indexed by them appends near the end of its B-tree instead of dirtying a
    random page per insert.

    The time is the OS clock's, read here on purpose and not the runtime's: it is only a
    locality hint that nothing reads back, and the runtime's clock may be virtual (a test's
    MockClock) or differ between processes. Uniqueness comes from the random bits (from a
    PRNG seeded from the OS, reseeded in forked children; far cheaper than uuid4's
    os.urandom call per id): ids are unique across processes and under MockClock, and
    ordered only as far as the clocks of the processes that made them agree. The first
    twelve digits are the time, shared by every id made in the same millisecond: never
    cut a prefix off an id to get a shorter unique name; use `random_id` for that."""
    stamp = time.time_ns() // 1_000_000 << 80
    return f"{stamp | (_ids.getrandbits(80) & _V7_RANDOM) | _V7_MARKS:032x}"


def random_id() -> str:
    """32 random hex digits (128 bits), any prefix of which is as random as the rest: for
    names that must not collide, such as a consumer name or a test's key prefix."""
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


@attrs.frozen(init=False)
class Envelope:
    """One emitted message. `data` is already plain JSON (the runtime unstructures it).

    `id` is unique per emitted message; each subscribing step gets its own copy with the same
    id. `created_at` is epoch seconds from the runtime's clock (never from time.time()).

    `not_before` (epoch s) makes a delayed message: the backend keeps it aside and files it
    in its subscriptions' queues when that time comes, as if it were published then.
    `expires_at` (epoch s): a copy not handed out by then ends as an expired dead letter.
    `key` is an idempotency key: a second publish with the same key on the same topic
    within the dedup window enqueues nothing and answers the first message's id.
    """

    topic: str
    data: JSON
    trace_id: str
    id: str = attrs.field(factory=new_id)  # a new one when not given (or given as None)
    group: str | None = None
    priority: int = 0
    created_at: float = 0.0
    not_before: float | None = None
    expires_at: float | None = None
    key: str | None = None

    def __init__(
        self,
        topic: str,
        data: JSON,
        trace_id: str,
        id: str | None = None,
        group: str | None = None,
        priority: int = 0,
        created_at: float = 0.0,
        not_before: float | None = None,
        expires_at: float | None = None,
        key: str | None = None,
    ) -> None:
        # Each slot set by its own descriptor: attrs' frozen __init__ goes through
        # object.__setattr__ by name, a third slower, and two envelopes are made per message.
        _topic(self, topic)
        _data(self, data)
        _trace_id(self, trace_id)
        _id(self, new_id() if id is None else id)
        _group(self, group)
        _priority(self, priority)
        _created_at(self, created_at)
        _not_before(self, not_before)
        _expires_at(self, expires_at)
        _key(self, key)


(
    _topic,
    _data,
    _trace_id,
    _id,
    _group,
    _priority,
    _created_at,
    _not_before,
    _expires_at,
    _key,
) = (getattr(Envelope, a.name).__set__ for a in attrs.fields(Envelope))
_new = object.__new__


def with_data(envelope: Envelope, data: JSON) -> Envelope:
    """`envelope` carrying `data` instead: what `attrs.evolve(envelope, data=data)` makes,
    at the cost of one frame (a backend makes one per message it hands out)."""
    copy = _new(Envelope)
    _topic(copy, envelope.topic)
    _data(copy, data)
    _trace_id(copy, envelope.trace_id)
    _id(copy, envelope.id)
    _group(copy, envelope.group)
    _priority(copy, envelope.priority)
    _created_at(copy, envelope.created_at)
    _not_before(copy, envelope.not_before)
    _expires_at(copy, envelope.expires_at)
    _key(copy, envelope.key)
    return copy


@attrs.frozen
class RateLimit:
    """At most `count` handler starts per `period` seconds for one subscription, across every
    instance sharing the backend: a token bucket holding up to `burst` tokens, refilled at
    `count / period` per second, one token per delivery leased. `burst` 1 (the default)
    spaces starts evenly; a larger burst lets that many start at once after a quiet spell."""

    count: int
    period: float  # s
    burst: int = 1

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(self.period, f"{self.period:g}s")
        text = f"{self.count}/{unit}"
        return text if self.burst == 1 else f"{text} (burst {self.burst})"


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
    prefetch: int | None = None  # leased ahead of free handlers; None = 4 x concurrency
    rate_limit: RateLimit | None = None  # starts per period across instances; None = no limit
    dedup_window: float = DEFAULT_DEDUP_WINDOW  # s an idempotency key is remembered
    ttl: float | None = None  # s after it is due that a message not yet handed out expires

    @property
    def lease_ahead(self) -> int:
        """How many deliveries an instance may lease beyond those its handlers can run now,
        so the next batch is on its way while this one runs (the step actor does so only
        while the step's handlers are fast): `prefetch`, or `PREFETCH_PER_SLOT` per unit of
        concurrency when unset. Standard queues only: a fifo or priority queue
        leases no more than it can run, or an instance could sit on a group head (or a lower
        priority) that another instance is free to run."""
        if self.strategy != "standard" or self.rate_limit is not None:
            return 0
        return PREFETCH_PER_SLOT * self.concurrency if self.prefetch is None else self.prefetch


@attrs.frozen
class Subscription:
    """A (topic, step) pair: each subscription has its own queue, so fan-out is a copy."""

    topic: str
    step: str
    options: QueueOptions = QueueOptions()

    @property
    def key(self) -> str:
        return f"{self.step}@{self.topic}"


@attrs.frozen(init=False)
class Delivery:
    """A leased message handed to one subscription's consumer.

    `attempt` is 1 on the first delivery. `receipt` is backend-specific (a lease token, a
    stream entry id); only the backend that issued it interprets it.
    """

    envelope: Envelope
    subscription: str  # Subscription.key
    attempt: int
    receipt: str
    # When this (first) delivery expires unless its handler starts by then, epoch s (see
    # `expiry_of`); None when it cannot expire (a later attempt, a re-driven copy).
    expires_at: float | None = None

    def __init__(
        self,
        envelope: Envelope,
        subscription: str,
        attempt: int,
        receipt: str,
        expires_at: float | None = None,
    ) -> None:
        # One per message handed out: set slot by slot, as `Envelope` is.
        _envelope(self, envelope)
        _subscription(self, subscription)
        _attempt(self, attempt)
        _receipt(self, receipt)
        _delivery_expires_at(self, expires_at)


_envelope, _subscription, _attempt, _receipt, _delivery_expires_at = (
    getattr(Delivery, a.name).__set__ for a in attrs.fields(Delivery)
)


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
    # Delayed emits not yet due. Not pending: like cron ticks to come, they are future work,
    # so a settle does not wait for them.
    scheduled: int = 0

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged or buried."""
        return self.ready + self.leased + self.delayed


def expiry_of(envelope: Envelope, ttl: float | None) -> float | None:
    """When a subscription's copy of `envelope` expires unless handed out (epoch s): its own
    `expires_at`, or `ttl` after it was due (`not_before`, else `created_at`), the earlier."""
    deadline = envelope.expires_at
    if ttl is not None:
        due = envelope.not_before if envelope.not_before is not None else envelope.created_at
        deadline = due + ttl if deadline is None else min(deadline, due + ttl)
    return deadline


def expired_error(deadline: float) -> str:
    """The one-line error of an expired message's dead letter."""
    when = datetime.fromtimestamp(deadline, UTC).isoformat().replace("+00:00", "Z")
    return f"{EXPIRED_ERROR}: not started by {when}"


def is_expired(letter: DeadLetter) -> bool:
    """Whether this dead letter is a message that expired before a handler started it."""
    return letter.attempts == 0 and letter.error.startswith(EXPIRED_ERROR + ":")
