"""Fan-out of stream changes to this process's subscribers (SSE and WebSocket clients).

The backend's follower calls `StreamHub.deliver` for every change of every instance; each
subscriber has a bounded buffer (`capacity` changes). Delivering never blocks: a subscriber
whose buffer is full is dropped, with a reason its session reports to the client, so a slow
client costs the publishers nothing and can reconnect (with Last-Event-ID) to catch up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from ..backends._stream_records import StreamChange

DEFAULT_CAPACITY = 256


@attrs.frozen
class HubStatistics:
    subscribers: int
    delivered: int
    dropped: int  # subscribers dropped for being too slow


class StreamSubscriber:
    """One client's view of one (stream, group): read changes from `changes`; when it ends,
    `closed_reason` says why (None: the subscriber left on its own)."""

    def __init__(self, hub: StreamHub, stream: str, group: str, capacity: int) -> None:
        self.hub = hub
        self.stream = stream
        self.group = group
        self.capacity = capacity
        self._send, self.changes = trio.open_memory_channel[StreamChange](capacity)
        self.closed_reason: str | None = None
        self.slow = False

    def offer(self, change: StreamChange) -> None:
        try:
            self._send.send_nowait(change)
        except trio.WouldBlock:
            self.slow = True
            self.hub._dropped += 1
            self.close(
                f"the client fell more than {self.capacity} changes behind; reconnect with "
                "Last-Event-ID to catch up"
            )
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def close(self, reason: str) -> None:
        """End this subscription: its reader sees the end of `changes`, then `closed_reason`."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._send.close()
        self.hub._remove(self)


class StreamHub:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"subscriber capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._subscribers: dict[tuple[str, str], set[StreamSubscriber]] = {}
        self._delivered = 0
        self._dropped = 0
        self.closed_reason: str | None = None

    def deliver(self, change: StreamChange) -> None:
        found = self._subscribers.get((change.stream, change.group))
        if not found:
            return
        for subscriber in list(found):
            subscriber.offer(change)
            self._delivered += 1

    @contextmanager
    def subscribe(
        self, stream: str, group: str, capacity: int | None = None
    ) -> Iterator[StreamSubscriber]:
        subscriber = StreamSubscriber(self, stream, group, capacity or self.capacity)
        if self.closed_reason is not None:
            subscriber.close(self.closed_reason)
        else:
            self._subscribers.setdefault((stream, group), set()).add(subscriber)
        try:
            yield subscriber
        finally:
            self._remove(subscriber)
            subscriber._send.close()

    def _remove(self, subscriber: StreamSubscriber) -> None:
        key = (subscriber.stream, subscriber.group)
        found = self._subscribers.get(key)
        if found is not None:
            found.discard(subscriber)
            if not found:
                del self._subscribers[key]

    def close_all(self, reason: str) -> None:
        """End every subscription (the server is stopping) and refuse new ones."""
        self.closed_reason = reason
        self.end_all(reason)

    def end_all(self, reason: str) -> None:
        """End every subscription now; new ones are still taken."""
        for found in list(self._subscribers.values()):
            for subscriber in list(found):
                subscriber.close(reason)

    def subscriber_count(self, stream: str | None = None, group: str | None = None) -> int:
        """Live subscribers of this process: all, of one stream, or of one group."""
        if stream is not None and group is not None:
            return len(self._subscribers.get((stream, group), ()))
        return sum(len(s) for (name, _), s in self._subscribers.items() if stream in (None, name))

    def statistics(self) -> HubStatistics:
        return HubStatistics(self.subscriber_count(), self._delivered, self._dropped)
