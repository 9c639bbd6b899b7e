"""Message status by id, settled records and cancellation on Redis (`_redis_lua_status`).

A lookup finds the message's stream entry by scanning the topics' streams (FIND, a chunk per
call), then reads every delivery's condition in one script call (STATUS); publish writes
nothing for it (an id index written by every publish doubled Redis's CPU per published
message: bench/bench_status.py). Settled records (P:msg:<id>) expire by themselves
(a relative TTL), so retention costs no sweeping.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._envelope import Delivery
from .._status import (
    SETTLED_STATES,
    CancelOutcome,
    DeliveryStatus,
    MessageStatus,
    Settlement,
    dead_state,
)
from . import _redis_codec as codec
from . import _redis_lua_status as lua_status
from ._redis_link import RedisScripts

SCRIPTS = (
    lua_status.FIND,
    lua_status.STATUS,
    lua_status.CANCEL,
    lua_status.CANCELLED,
    lua_status.FINISH,
)
_FIND_CHUNK = 2000  # stream entries a FIND call looks at (a script blocks Redis meanwhile)

_WHERE = {"parked": "queued", "unread": "queued", "adopting": "running"}


# json.dumps with separators would build an encoder per call (a settled record per message)
_dumps = json.JSONEncoder(separators=(",", ":")).encode
# JSONEncoder.encode, in turn, builds json's C encoder anew for every call: one made here
# writes the same text (a flat list of str, numbers and None needs no cycle check).
_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_list = (
    None
    if _c_encoder is None
    else _c_encoder(
        None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
)


def record_text(settlement: Settlement, enqueued: float | None) -> str:
    record = [
        settlement.state,
        settlement.attempts,
        settlement.started_at,
        settlement.finished_at,
        settlement.result,
        settlement.note,
        settlement.error,
        enqueued,
        settlement.keep_until,
    ]
    if _encode_list is None:
        text: str = _dumps(record)
        return text
    return "".join(_encode_list(record, 0))


def _settled_status(subscription: str, text: str, now: float) -> DeliveryStatus | None:
    state, attempts, started, finished, result, note, error, enqueued, keep = json.loads(text)
    if keep <= now:
        return None  # past its retention on the runtime's clock; Redis drops it soon
    settlement = Settlement(state, attempts, started, finished, keep, result, note, error)
    return settlement.status(subscription, enqueued)


def _needle(message_id: str) -> str:
    """The id as it reads inside the stored JSON text (quotes and backslashes escaped)."""
    return codec.encode_json(message_id, where="a message id")[1:-1]


def _ttl_ms(keep_until: float, now: float) -> str:
    """Redis expires keys on its own clock: the retention left, as a relative TTL."""
    return str(max(1, round((keep_until - now) * 1000)))


class RedisStatusMixin(RedisScripts):
    """The MessageBackend half of `RedisBackend`."""

    async def finish(
        self, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        now = self._running()[1].now()
        await self._check_declared(deliveries)  # type: ignore[attr-defined]
        await self._adopted(deliveries)  # type: ignore[attr-defined]
        records: list[str] = [str(len(deliveries))]
        by_sub: dict[str, list[str]] = {}
        ttls: dict[float, str] = {}  # a batch's records share their keep_until
        for delivery, settlement in zip(deliveries, settlements, strict=True):
            # `codec.parse_receipt`, inline (a call fewer per message); it says what is
            # wrong with a receipt this backend did not issue.
            ref, _, attempt = delivery.receipt.rpartition("/")
            if not ref or not attempt.isdigit():
                codec.parse_receipt(delivery.receipt)
            sub, keep = delivery.subscription, settlement.keep_until
            ttl = ttls.get(keep)
            if ttl is None:
                ttl = ttls[keep] = _ttl_ms(keep, now)
            envelope = delivery.envelope
            records += (sub, ref, envelope.id, ttl, record_text(settlement, envelope.created_at))
            pairs = by_sub.get(sub)
            if pairs is None:
                pairs = by_sub[sub] = []
            pairs += (ref, attempt)
        args = records + codec.receipt_groups(by_sub)
        await self._script("acknowledge messages", lua_status.FINISH, args)

    async def _find(self, message_id: str) -> tuple[str, str]:
        """(topic, ref) of the message's stream entry, or ('', '') when no stream holds it."""
        link, _ = self._running()
        topics = sorted(
            set(
                await link.call("list topics", lambda: link.client.hvals(f"{self.prefix}:subtopic"))
            )
        )
        for topic in topics:
            start = "-"
            while True:
                args = [topic, message_id, _needle(message_id), start, _FIND_CHUNK]
                reply = await self._script("find a message", lua_status.FIND, args)
                if reply[0]:
                    return topic, str(reply[0])
                if len(reply) < 2:
                    break
                start = reply[1]
        return "", ""

    async def message_status(self, message_id: str) -> MessageStatus | None:
        _, clock = self._running()
        topic, ref = await self._find(message_id)
        now = clock.now()
        args = [message_id, codec.millis(now), topic, ref, _needle(message_id)]
        topic, body, live, settled, dead = await self._script(
            "look up a message", lua_status.STATUS, args
        )
        enqueued = codec.decode_envelope(body).created_at if body else None
        found: dict[str, DeliveryStatus] = {}
        for sub, where, attempts, due, failure in live:
            error, traceback = json.loads(failure) if failure else (None, None)
            due_at = int(due) / 1000 if due else None
            if where == "delayed" and due_at is not None and due_at <= now and not int(attempts):
                where = "queued"  # a delayed message past its time, filed at the next receive
            found[sub] = DeliveryStatus(
                subscription=sub,
                state=_WHERE.get(where, where),
                attempts=int(attempts),
                enqueued_at=enqueued,
                due_at=due_at,
                error=error,
                traceback=traceback,
            )
        for sub, fields in dead:
            letter = codec.decode_dead_letter(
                sub, dict(zip(fields[::2], fields[1::2], strict=True))
            )
            topic = topic or letter.envelope.topic
            found.setdefault(
                sub,
                DeliveryStatus(
                    subscription=sub,
                    state=dead_state(letter.error, letter.attempts),
                    attempts=letter.attempts,
                    enqueued_at=letter.envelope.created_at,
                    finished_at=letter.failed_at,
                    error=letter.error,
                    traceback=letter.traceback,
                    dead_letter_id=letter.id,
                ),
            )
        for i in range(0, len(settled), 2):
            sub = settled[i]
            kept = _settled_status(sub, settled[i + 1], now)
            if kept is None:
                continue
            found.setdefault(sub, kept)
            if not topic and "@" in sub:
                topic = sub.split("@", 1)[1]
        if not found:
            return None
        return MessageStatus(message_id, topic or None, tuple(found[k] for k in sorted(found)))

    async def cancel(self, message_id: str, *, keep_until: float) -> CancelOutcome:
        _, clock = self._running()
        now = clock.now()
        for _ in range(2):
            topic, ref = await self._find(message_id)
            args = [message_id, codec.millis(now), codec.epoch(now), _ttl_ms(keep_until, now)]
            args += [codec.epoch(keep_until), topic, ref]
            cancelled, running = await self._script("cancel a message", lua_status.CANCEL, args)
            if topic or cancelled:
                break
            # Not in a stream and not kept aside as delayed: it may have been filed from the
            # delayed set into its stream between FIND and CANCEL; look once more.
        for key in cancelled:
            bell = self._bells.get(key)  # type: ignore[attr-defined]
            if bell is not None:
                bell.ring()
        status = await self.message_status(message_id)
        settled = [
            d.subscription
            for d in (status.deliveries if status else ())
            if d.subscription not in cancelled and d.state in SETTLED_STATES
        ]
        return CancelOutcome(
            found=bool(cancelled or settled),
            cancelled=tuple(sorted(cancelled)),
            running=tuple(sorted(running)),
            settled=tuple(sorted(settled)),
        )

    async def cancel_requested(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        self._running()
        if not deliveries:
            return []
        args: list[Any] = []
        for delivery in deliveries:
            args += (delivery.envelope.id, delivery.subscription)
        flags = await self._script("look up cancellations", lua_status.CANCELLED, args)
        return [d for d, flag in zip(deliveries, flags, strict=True) if int(flag)]
