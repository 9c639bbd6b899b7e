"""Where a message is, by id: one record per delivery (a message fanned out to N subscribing
steps has N deliveries), and what settling one keeps.

A backend derives the live states (queued, delayed, running, retrying, dead) from where the
message sits in its queues and dead letters, so publishing and leasing write nothing extra.
A delayed emit not yet due sits once per topic in the backend's delay store, not in any
queue: it reads `delayed`, one delivery per subscription of its topic (`scheduled_status`).
A dead letter of a message that expired unstarted reads `expired` (`dead_state`).
Only settling writes a small record (`Settlement`: done or cancelled, the attempt count,
the times and the handler's return value as capped JSON text), kept until `keep_until`.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

import attrs

from ._convert import unstructure
from ._envelope import EXPIRED_ERROR, JSON

MessageState = Literal[
    "queued", "delayed", "running", "retrying", "done", "dead", "cancelled", "expired"
]
MESSAGE_STATES: tuple[MessageState, ...] = (
    "queued",
    "delayed",
    "running",
    "retrying",
    "done",
    "dead",
    "cancelled",
    "expired",
)
# States a delivery never leaves (a dead letter may be re-driven: then it is queued again).
SETTLED_STATES: frozenset[str] = frozenset({"done", "dead", "cancelled", "expired"})

DEFAULT_RETENTION = 86_400.0  # s a settled delivery's record (and result) is kept
DEFAULT_RESULT_MAX_BYTES = 65_536  # bytes of a handler's return value kept as JSON
# s a cancelled delivery's record is kept at least, even with records turned off: the lease
# keeper of the instance running it reads it to stop the handler
CANCEL_MARK_MIN = 3_600.0
CANCELLED = "cancelled on request"  # the `error` of a cancelled delivery


@attrs.frozen
class DeliveryStatus:
    """One delivery of a message (to the step of `subscription`, `step@topic`)."""

    subscription: str
    state: MessageState
    attempts: int  # attempts started so far (0 while first queued)
    enqueued_at: float | None = None  # epoch seconds
    started_at: float | None = None  # of the latest attempt, when known
    finished_at: float | None = None  # settled (done, dead, cancelled)
    due_at: float | None = None  # delayed / retrying: when it runs next
    error: str | None = None  # the last failure, one line
    traceback: str | None = None
    result: JSON = None  # what the handler returned (done), as JSON
    result_note: str | None = None  # why no result was kept (too large, not JSON)
    dead_letter_id: str | None = None

    @property
    def step(self) -> str:
        return self.subscription.split("@", 1)[0]


@attrs.frozen
class MessageStatus:
    """Every delivery of one message, ordered by subscription."""

    id: str
    topic: str | None
    deliveries: tuple[DeliveryStatus, ...]

    @property
    def state(self) -> MessageState:
        """One word for the message: while a delivery is live, the least advanced live
        state (queued < delayed < running < retrying); once all are over, the worst ending
        (dead > expired > cancelled > done), so a message reads `done` only when every
        delivery is."""
        live = [d.state for d in self.deliveries if d.state not in SETTLED_STATES]
        if live:
            return min(live, key=MESSAGE_STATES.index)
        endings: tuple[MessageState, ...] = ("done", "cancelled", "expired", "dead")
        return max((d.state for d in self.deliveries), key=endings.index, default="done")


class Settlement(NamedTuple):
    """What a backend keeps when a delivery ends done or cancelled, until `keep_until`.
    (A named tuple: one is made per ack, on the hot path.)"""

    state: Literal["done", "cancelled"]
    attempts: int
    started_at: float | None
    finished_at: float
    keep_until: float
    result: str | None = None  # JSON text of the return value; None = nothing returned
    note: str | None = None  # why `result` is None although the handler returned something
    error: str | None = None  # cancelled: why

    def status(self, subscription: str, enqueued_at: float | None) -> DeliveryStatus:
        return DeliveryStatus(
            subscription=subscription,
            state=self.state,
            attempts=self.attempts,
            enqueued_at=enqueued_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=self.error,
            result=None if self.result is None else json.loads(self.result),
            result_note=self.note,
        )


def scheduled_status(
    subscription: str, due: float, enqueued_at: float | None, now: float
) -> DeliveryStatus:
    """A delivery of a delayed message still kept aside (once per topic) until `due`: one
    per subscription of its topic. Past its time but not yet filed in the queues (filing
    happens when a receiver of the topic looks), it is as good as queued."""
    return DeliveryStatus(
        subscription=subscription,
        state="delayed" if due > now else "queued",
        attempts=0,
        enqueued_at=enqueued_at,
        due_at=due,
    )


def dead_state(error: str, attempts: int) -> MessageState:
    """`expired` for a dead letter that expired before any handler started it, else `dead`
    (the same test as `motet.is_expired`, on the letter's parts)."""
    return "expired" if attempts == 0 and error.startswith(EXPIRED_ERROR + ":") else "dead"


@attrs.frozen
class CancelOutcome:
    """What `cancel(id)` found: `cancelled` the subscriptions whose delivery it ended (of
    them, `running` those whose handler was running), `settled` those already over."""

    found: bool
    cancelled: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    settled: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.cancelled)

    def describe(self, message_id: str) -> str:
        if not self.found:
            return f"no message {message_id} is known (never emitted, or its record expired)"
        if not self.cancelled:
            return (
                f"message {message_id} was not cancelled: every delivery is already over "
                f"({', '.join(self.settled)})"
            )
        text = f"message {message_id} cancelled for {', '.join(self.cancelled)}"
        if self.running:
            text += f" (running handlers stopped: {', '.join(self.running)})"
        return text


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def encode_result(value: Any, *, jsonify: Any, max_bytes: int) -> tuple[str | None, str | None]:
    """(JSON text, None) of a handler's return value, or (None, why not) when it cannot be
    kept: not JSON (after the runtime's unstructuring), or larger than `max_bytes`."""
    if value is None:
        return None, None
    try:
        text = _dumps(value)  # plain JSON values (most results) skip the converter
    except (TypeError, ValueError):
        try:
            text = _dumps(jsonify(value))
        except (TypeError, ValueError) as exc:
            return None, f"the return value is not JSON ({type(value).__name__}: {exc})"
        except Exception as exc:  # a converter hook of the user's
            return None, f"the return value could not be turned into JSON ({exc})"
    size = len(text.encode("utf-8", "backslashreplace"))
    if size > max_bytes:
        return None, f"the return value is {size} bytes of JSON, over the {max_bytes}-byte cap"
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text, None


def check_message_id(value: Any) -> str:
    """A message id as given to a lookup: a non-empty string without spaces, at most 200
    characters. Raises ValueError saying what was expected."""
    if not isinstance(value, str):
        raise ValueError(f"a message id is a string, got {type(value).__name__} {value!r}")
    if not value or len(value) > 200 or "/" in value or any(c.isspace() for c in value):
        raise ValueError(
            f"a message id is a non-empty string without spaces or slashes (at most 200 "
            "characters), "
            f"got {value[:60]!r}"
        )
    return value


@attrs.frozen
class Records:
    """What settling keeps: for `retention` seconds (0: nothing; a cancelled delivery is
    still kept `CANCEL_MARK_MIN`), return values up to `max_bytes` of JSON made by
    `jsonify` (the runtime's unstructuring)."""

    retention: float = DEFAULT_RETENTION
    max_bytes: int = DEFAULT_RESULT_MAX_BYTES
    jsonify: Any = attrs.field(default=lambda value: value, eq=False, repr=False)

    def cancel_keep_until(self, now: float) -> float:
        return now + max(self.retention, CANCEL_MARK_MIN)


def status_json(status: MessageStatus) -> dict[str, Any]:
    """`status` as the operator API and `motet message --json` show it: the converter's
    record, plus what is derived from it (the message's one-word state after its topic, each
    delivery's step)."""
    raw = unstructure(status)
    deliveries = [
        {**delivery, "step": status.deliveries[i].step}
        for i, delivery in enumerate(raw["deliveries"])
    ]
    return {"id": raw["id"], "topic": raw["topic"], "state": status.state, "deliveries": deliveries}
