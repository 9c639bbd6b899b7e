"""The topic publisher: turns emits into envelopes and hands them to the backend, which copies
each one into the queue of every subscription of its topic (fan-out)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from .._clock import Clock
from .._envelope import JSON, Envelope, Subscription, check_name, new_id
from ..backends._protocol import QueueBackend

Jsonify = Callable[[Any], JSON]
EnvelopeObserver = Callable[[Envelope, str | None], None]  # (envelope, emitting step)


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
    ) -> str:
        """Publish one message; returns its id once the backend holds it durably."""
        envelope = self.envelope(
            topic, data, trace_id=trace_id, group=group, priority=priority, id=id
        )
        await self.publish_envelopes([envelope], source=source)
        return envelope.id

    def envelope(
        self,
        topic: str,
        data: Any,
        *,
        trace_id: str,
        group: str | None = None,
        priority: int = 0,
        id: str | None = None,
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
            created_at=self._clock.now(),
        )

    async def publish_envelopes(
        self, envelopes: Sequence[Envelope], *, source: str | None = None
    ) -> None:
        await self._backend.publish(envelopes)
        self.published(envelopes, source=source)

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
