"""The memory backend's delayed emits and idempotency keys: pure bookkeeping, no waiting.

`Later` keeps each topic's delayed messages in a heap by due time; the backend files them
in the topic's queues when a receiver of the topic finds them due, so a delayed message
joins its queues (and its fifo group) as if it were published then. `Keys` remembers, per
(topic, key), the first message's id until its dedup window ends.
"""

from __future__ import annotations

import heapq

from .._envelope import JSON, Envelope


class Later:
    def __init__(self) -> None:
        # topic -> [(due, seq, envelope, its checked data)]; seq keeps ties in publish order
        self._heaps: dict[str, list[tuple[float, int, Envelope, JSON]]] = {}

    def add(self, due: float, seq: int, envelope: Envelope, data: JSON) -> None:
        heapq.heappush(self._heaps.setdefault(envelope.topic, []), (due, seq, envelope, data))

    def pop_due(self, topic: str, now: float) -> list[tuple[Envelope, JSON]]:
        heap = self._heaps.get(topic)
        due: list[tuple[Envelope, JSON]] = []
        while heap and heap[0][0] <= now:
            _, _, envelope, data = heapq.heappop(heap)
            due.append((envelope, data))
        if heap is not None and not heap:
            del self._heaps[topic]
        return due

    def next_due(self, topic: str) -> float | None:
        heap = self._heaps.get(topic)
        return heap[0][0] if heap else None

    def count(self, topic: str) -> int:
        return len(self._heaps.get(topic, ()))

    def topics(self) -> list[str]:
        return list(self._heaps)

    def find(self, message_id: str) -> tuple[float, Envelope] | None:
        """(due, envelope) of the delayed message `message_id`, or None (a scan: status and
        cancel lookups only)."""
        for heap in self._heaps.values():
            for due, _, envelope, _ in heap:
                if envelope.id == message_id:
                    return due, envelope
        return None

    def remove(self, message_id: str) -> tuple[float, Envelope] | None:
        """Take the delayed message `message_id` out for good (cancelled): (due, envelope)."""
        for topic, heap in self._heaps.items():
            for i, (due, _, envelope, _) in enumerate(heap):
                if envelope.id == message_id:
                    heap[i] = heap[-1]
                    heap.pop()
                    heapq.heapify(heap)
                    if not heap:
                        del self._heaps[topic]
                    return due, envelope
        return None

    def earliest(self) -> float | None:
        return min((heap[0][0] for heap in self._heaps.values()), default=None)


class Keys:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[str, float]] = {}  # -> (first id, until)
        self._ends: list[tuple[float, str, str]] = []  # (until, topic, key), to forget

    def first(self, topic: str, key: str, now: float) -> str | None:
        """The id of the message that took `key` on `topic` within its window, or None."""
        self._forget(now)
        seen = self._seen.get((topic, key))
        return seen[0] if seen is not None and now < seen[1] else None

    def remember(self, topic: str, key: str, id: str, until: float) -> None:
        self._seen[(topic, key)] = (id, until)
        heapq.heappush(self._ends, (until, topic, key))

    def _forget(self, now: float) -> None:
        ends = self._ends
        while ends and ends[0][0] <= now:
            until, topic, key = heapq.heappop(ends)
            seen = self._seen.get((topic, key))
            if seen is not None and seen[1] == until:
                del self._seen[(topic, key)]
