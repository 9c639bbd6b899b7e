"""The topic publisher: turns emits into envelopes and hands them to the backend, which copies
each one into the queue of every subscription of its topic (fan-out)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from math import isfinite
from typing import Any

from .._clock import Clock
from .._envelope import DEFAULT_DEDUP_WINDOW, JSON, Envelope, Subscription, check_name, new_id
from .._when import due_time, expiry_time
from ..backends._protocol import QueueBackend

Jsonify = Callable[[Any], JSON]
EnvelopeObserver = Callable[[Envelope, str | None], None]  # (envelope, emitting step)

# The exact types of the values of a "flat" payload, a dict with str keys that the JSON
# conversion would only copy; finite floats too (it refuses NaN and infinity).
_SCALARS = frozenset({str, int, bool, type(None)})
_STR = frozenset({str})


def _flat_with_floats(data: dict[Any, Any]) -> bool:
    """Whether the values of a dict with str keys are JSON scalars, its floats finite."""
    for value in data.values():
        kind = type(value)
        if kind is float:
            if not isfinite(value):
                return False
        elif kind not in _SCALARS:
            return False
    return True


class Publisher:
    def __init__(
        self,
        backend: QueueBackend,
        clock: Clock,
        jsonify: Jsonify,
        subscriptions: Sequence[Subscription],
        *,
        on_envelope: EnvelopeObserver | None = None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._jsonify = jsonify
        self.subscribers: dict[str, list[Subscription]] = defaultdict(list)
        for sub in subscriptions:
            self.subscribers[sub.topic].append(sub)
        self._windows = {
            topic: max(s.options.dedup_window for s in subs)
            for topic, subs in self.subscribers.items()
        }
        self._on_envelope = on_envelope  # the runtime's observers, None when none watch

    async def publish(
        self,
        topic: str,
        data: Any,
        *,
        trace_id: str,
        group: str | None = None,
        priority: int = 0,
        source: str | None = None,
        id: str | None = None,
        delay: Any = None,
        at: Any = None,
        key: str | None = None,
        expires: Any = None,
    ) -> str:
        """Publish one message; returns its id once the backend holds it durably.

        `delay` (seconds, a timedelta or "5m") or `at` (an aware datetime) delays it;
        `key` makes a repeat within the topic's dedup window answer the first message's
        id and enqueue nothing; `expires` (a duration after it is due, or an aware
        datetime) ends it as expired if no handler started it by then."""
        if delay is None and at is None and key is None and expires is None:
            # The common emit, built and published without the general path's keyword
            # plumbing and lists (it runs once per message).
            if group is not None:
                check_name(group, f"the message group of a message on topic {topic!r}")
            # A flat payload goes to the backend as is: it copies (memory) or encodes
            # (durable) it before it yields, as it does every payload, so a copy here would
            # be a second one. Observers get a copy of their own, never the caller's dict.
            plain = data
            if self._on_envelope is not None or not (
                type(data) is dict
                and _STR.issuperset(map(type, data))
                and (_SCALARS.issuperset(map(type, data.values())) or _flat_with_floats(data))
            ):
                plain = self._plain(topic, data)
            envelope = Envelope(
                topic,
                plain,
                trace_id,
                id or new_id(),
                group,
                priority,
                self._clock.now(),
            )
            await self._backend.publish((envelope,))
            if self._on_envelope is not None:
                self._on_envelope(envelope, source)
            return envelope.id
        now = self._clock.now()
        envelope = self.envelope(
            topic,
            data,
            trace_id=trace_id,
            group=group,
            priority=priority,
            id=id,
            created_at=now,
            **later_fields(topic, now, delay=delay, at=at, key=key, expires=expires),
        )
        [sent] = await self.publish_envelopes([envelope], source=source)
        return sent

    def dedup_window(self, topic: str) -> float:
        """How long a key is remembered on `topic`: the longest window of its subscriptions."""
        return self._windows.get(topic, DEFAULT_DEDUP_WINDOW)

    def envelope(
        self,
        topic: str,
        data: Any,
        *,
        trace_id: str,
        group: str | None = None,
        priority: int = 0,
        id: str | None = None,
        created_at: float | None = None,
        not_before: float | None = None,
        expires_at: float | None = None,
        key: str | None = None,
    ) -> Envelope:
        if group is not None:
            check_name(group, f"the message group of a message on topic {topic!r}")
        return Envelope(
            topic=topic,
            data=self._plain(topic, data),
            trace_id=trace_id,
            id=id or new_id(),
            group=group,
            priority=priority,
            created_at=self._clock.now() if created_at is None else created_at,
            not_before=not_before,
            expires_at=expires_at,
            key=key,
        )

    async def publish_envelopes(
        self, envelopes: Sequence[Envelope], *, source: str | None = None
    ) -> list[str]:
        """Publish; returns the id each envelope is enqueued under (the first message's, for
        a repeated idempotency key: that envelope enqueued nothing, and is not observed)."""
        keyed = [e for e in envelopes if e.key is not None]
        if not keyed:
            await self._backend.publish(envelopes)
            self.published(envelopes, source=source)
            return [e.id for e in envelopes]
        window = max(self.dedup_window(e.topic) for e in keyed)
        ids = await self._backend.publish(envelopes, dedup_window=window)
        sent = [e for e, i in zip(envelopes, ids, strict=True) if e.id == i]
        self.published(sent, source=source)
        return ids

    def published(self, envelopes: Sequence[Envelope], *, source: str | None = None) -> None:
        """Tell the observers about envelopes the backend took, through `publish_envelopes`
        or in a write of its own (a dead letter's announcement is published by `bury`)."""
        if self._on_envelope is not None:
            for envelope in envelopes:
                self._on_envelope(envelope, source)

    def _plain(self, topic: str, data: Any) -> JSON:
        """Unstructure attrs / dataclass data into fresh plain JSON; data no backend could
        store is refused at the emit, naming the topic and the path of the bad value."""
        try:
            return self._jsonify(data)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"data emitted on topic {topic!r} is not JSON-serializable: {exc}"
            ) from exc


def later_fields(
    topic: str, now: float, *, delay: Any, at: Any, key: Any, expires: Any
) -> dict[str, Any]:
    """An envelope's `not_before`, `expires_at` and `key` from an emit's `delay`/`at`,
    `expires` and `key` (checked here, at the emit, with errors naming the argument)."""
    if key is not None:
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"the idempotency key of a message on topic {topic!r} must be a non-empty "
                f"string, got {key!r}"
            )
        check_name(key, f"the idempotency key of a message on topic {topic!r}")
    not_before = due_time(now, delay, at)
    due = now if not_before is None else not_before
    return {"not_before": not_before, "expires_at": expiry_time(due, expires), "key": key}
