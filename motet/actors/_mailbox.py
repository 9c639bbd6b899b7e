"""Bounded mailboxes: the only way messages reach an actor.

A `Mailbox` is one trio memory channel whose two ends are held by the mailbox
itself, not by the tasks that use it. Its creator (the supervisor) keeps it across
restarts of the consuming actor, so an actor that crashes and is restarted reads the
SAME buffer and nothing queued is lost. For that reason nothing here closes the
receive side when a consumer goes away; only `close()` ends the mailbox, and it
closes the send side so that what is buffered can still be drained.

Capacity is a required, visible choice: `send` blocks while the mailbox is full
(backpressure), `send_nowait` raises `MailboxFull` instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio

from motet._errors import MailboxFull

T = TypeVar("T")


@attrs.frozen
class MailboxStatistics:
    """A snapshot of one mailbox, for metrics and the console."""

    name: str
    capacity: int
    buffered: int
    senders_waiting: int
    receivers_waiting: int


def _check_positive_int(what: str, value: object) -> int:
    # bool is an int subclass; `capacity=True` is a mistake, not a capacity of 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int > 0, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{what} must be an int > 0, got {value!r}")
    return value


class Mailbox(Generic[T]):
    """A bounded FIFO of messages for one actor. Create it with `open_mailbox`.

    Any number of tasks may send and receive concurrently. After `close()`, sends
    raise `trio.ClosedResourceError`; receivers drain what is buffered and then get
    `trio.EndOfChannel`.
    """

    __slots__ = (
        "_capacity",
        "_name",
        "_receive",
        "_send",
        "put_nowait",
        "receive",
        "receive_nowait",
    )

    def __init__(self, capacity: int, *, name: str) -> None:
        self._capacity = _check_positive_int("mailbox capacity", capacity)
        if not isinstance(name, str) or not name:
            raise ValueError(f"mailbox name must be a non-empty str, got {name!r}")
        self._name = name
        send, receive = trio.open_memory_channel[T](capacity)
        self._send = send
        self._receive = receive
        # Take the oldest item, waiting for one if the mailbox is empty. The channel's own
        # method, not a wrapper: a worker calls it once per message.
        self.receive: Callable[[], Awaitable[T]] = receive.receive
        # Take the oldest item now, or raise `trio.WouldBlock` if there is none (the
        # channel's own method too).
        self.receive_nowait: Callable[[], T] = receive.receive_nowait
        # Put an item in now, raising `trio.WouldBlock` when full: the channel's own method,
        # for a sender that keeps count of the room itself (the step actor's fetcher, once
        # per delivery). Others use `send_nowait`, whose MailboxFull names the mailbox.
        self.put_nowait: Callable[[T], None] = send.send_nowait

    def __repr__(self) -> str:
        stats = self.statistics()
        return f"<Mailbox {self._name!r} {stats.buffered}/{self._capacity}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def capacity(self) -> int:
        return self._capacity

    async def send(self, item: T) -> None:
        """Put `item` in the mailbox, waiting while it is full."""
        await self._send.send(item)

    def send_nowait(self, item: T) -> None:
        """Put `item` in the mailbox now, or raise `MailboxFull`."""
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            raise MailboxFull(self._name, self._capacity) from None

    async def receive_batch(self, max_items: int) -> list[T]:
        """Wait for at least one item, then take up to `max_items` in FIFO order.

        Only the first item costs a checkpoint; the rest are whatever is already
        buffered (or offered by blocked senders), taken without yielding. This is
        how an actor drains several messages per checkpoint.
        """
        _check_positive_int("max_items", max_items)
        batch = [await self._receive.receive()]
        take = self._receive.receive_nowait
        # One exception ends the loop, so its cost is paid once per batch.
        try:
            while len(batch) < max_items:
                batch.append(take())
        except (trio.WouldBlock, trio.EndOfChannel):
            pass
        return batch

    def buffered(self) -> int:
        """How many items wait in the mailbox (those handed straight to a waiting receiver
        never count)."""
        return self._send.statistics().current_buffer_used

    def statistics(self) -> MailboxStatistics:
        stats = self._send.statistics()
        return MailboxStatistics(
            name=self._name,
            capacity=self._capacity,
            buffered=stats.current_buffer_used,
            senders_waiting=stats.tasks_waiting_send,
            receivers_waiting=stats.tasks_waiting_receive,
        )

    def close(self) -> None:
        """Refuse further sends; buffered items stay receivable. Idempotent."""
        self._send.close()


def open_mailbox(capacity: int, *, name: str) -> Mailbox[T]:
    """Create a bounded mailbox holding at most `capacity` items.

    The caller owns it: pass it to the actor it feeds, and keep it when that actor
    restarts.
    """
    return Mailbox(capacity, name=name)
