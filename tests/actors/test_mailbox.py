"""Bounded mailboxes: capacity, backpressure, send_nowait, batches, close, statistics."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from motet._errors import MailboxFull
from motet.actors._mailbox import Mailbox, MailboxStatistics, open_mailbox


@pytest.mark.parametrize(
    ("capacity", "error"),
    [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError), ("8", TypeError)],
)
def test_capacity_must_be_a_positive_int(capacity: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"mailbox capacity must be an int > 0, got"):
        open_mailbox(capacity, name="m")  # type: ignore[arg-type]


def test_name_is_required_and_non_empty() -> None:
    with pytest.raises(ValueError, match="mailbox name must be a non-empty str"):
        open_mailbox(4, name="")
    with pytest.raises(TypeError):
        open_mailbox(4)  # type: ignore[call-arg]


async def test_items_come_out_in_fifo_order() -> None:
    mailbox: Mailbox[int] = open_mailbox(8, name="m")
    for n in range(5):
        await mailbox.send(n)
    assert [await mailbox.receive() for _ in range(3)] == [0, 1, 2]
    assert [mailbox.receive_nowait() for _ in range(2)] == [3, 4]
    with pytest.raises(trio.WouldBlock):
        mailbox.receive_nowait()


async def test_send_nowait_on_a_full_mailbox_names_it_and_its_capacity() -> None:
    mailbox: Mailbox[str] = open_mailbox(2, name="billing")
    mailbox.send_nowait("a")
    mailbox.send_nowait("b")
    with pytest.raises(MailboxFull) as info:
        mailbox.send_nowait("c")
    assert (info.value.name, info.value.capacity) == ("billing", 2)
    assert str(info.value) == "mailbox 'billing' is full (capacity 2)"
    assert mailbox.statistics().buffered == 2, "the refused item was not queued"


async def test_send_waits_while_full_and_resumes_when_room_frees() -> None:
    mailbox: Mailbox[int] = open_mailbox(2, name="m")
    sent: list[int] = []

    async def producer() -> None:
        for n in range(4):
            await mailbox.send(n)
            sent.append(n)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert sent == [0, 1]
        assert mailbox.statistics() == MailboxStatistics(
            name="m", capacity=2, buffered=2, senders_waiting=1, receivers_waiting=0
        )
        assert await mailbox.receive() == 0
        await trio.testing.wait_all_tasks_blocked()
        assert sent == [0, 1, 2]
        assert [await mailbox.receive() for _ in range(3)] == [1, 2, 3]
    assert sent == [0, 1, 2, 3]


async def test_receive_batch_waits_for_the_first_item() -> None:
    mailbox: Mailbox[int] = open_mailbox(4, name="m")
    batches: list[list[int]] = []

    async def consumer() -> None:
        batches.append(await mailbox.receive_batch(10))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().receivers_waiting == 1
        assert batches == []
        mailbox.send_nowait(7)
    assert batches == [[7]]


async def test_receive_batch_takes_at_most_max_items_and_leaves_the_rest() -> None:
    mailbox: Mailbox[int] = open_mailbox(10, name="m")
    for n in range(7):
        mailbox.send_nowait(n)
    assert await mailbox.receive_batch(3) == [0, 1, 2]
    assert await mailbox.receive_batch(100) == [3, 4, 5, 6]
    assert mailbox.statistics().buffered == 0


async def test_receive_batch_also_takes_items_of_blocked_senders_in_order() -> None:
    mailbox: Mailbox[int] = open_mailbox(2, name="m")
    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(mailbox.send, n)
            await trio.testing.wait_all_tasks_blocked()
        assert mailbox.statistics().senders_waiting == 3
        assert await mailbox.receive_batch(10) == [0, 1, 2, 3, 4]


async def test_receive_batch_costs_one_checkpoint_not_one_per_item() -> None:
    mailbox: Mailbox[int] = open_mailbox(200, name="m")
    ticks = 0

    async def sibling() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sibling)
        await trio.lowlevel.checkpoint()  # let the sibling start ticking
        for n in range(100):
            mailbox.send_nowait(n)
        before = ticks
        batch = await mailbox.receive_batch(100)
        batch_ticks = ticks - before
        for n in range(100):
            mailbox.send_nowait(n)
        before = ticks
        one_by_one = [await mailbox.receive() for _ in range(100)]
        single_ticks = ticks - before
        nursery.cancel_scope.cancel()
    assert batch == one_by_one == list(range(100))
    # One checkpoint lets the always-runnable sibling run at most twice: once in the
    # current scheduler batch and once more if it is ordered first in the next.
    assert batch_ticks <= 2
    assert single_ticks >= 99


async def test_invalid_max_items_is_refused() -> None:
    mailbox: Mailbox[int] = open_mailbox(2, name="m")
    with pytest.raises(ValueError, match="max_items must be an int > 0, got 0"):
        await mailbox.receive_batch(0)


async def test_a_cancelled_receiver_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox: Mailbox[str] = open_mailbox(2, name="m")
    with trio.move_on_after(1):
        await mailbox.receive_batch(5)
    mailbox.send_nowait("kept")
    assert await mailbox.receive() == "kept"


async def test_close_refuses_sends_and_lets_receivers_drain_then_end() -> None:
    mailbox: Mailbox[int] = open_mailbox(4, name="m")
    for n in range(3):
        mailbox.send_nowait(n)
    mailbox.close()
    mailbox.close()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        mailbox.send_nowait(9)
    with pytest.raises(trio.ClosedResourceError):
        await mailbox.send(9)
    assert await mailbox.receive() == 0
    assert await mailbox.receive_batch(10) == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        await mailbox.receive_batch(10)
    with pytest.raises(trio.EndOfChannel):
        mailbox.receive_nowait()


async def test_close_wakes_a_waiting_receiver() -> None:
    mailbox: Mailbox[int] = open_mailbox(4, name="m")
    ended = False

    async def consumer() -> None:
        nonlocal ended
        with pytest.raises(trio.EndOfChannel):
            await mailbox.receive()
        ended = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        mailbox.close()
    assert ended


async def test_a_new_consumer_reads_what_a_dead_one_left() -> None:
    mailbox: Mailbox[int] = open_mailbox(8, name="m")
    for n in range(4):
        mailbox.send_nowait(n)

    async def crashing_consumer() -> None:
        await mailbox.receive()
        raise RuntimeError("consumer bug")

    with pytest.RaisesGroup(RuntimeError):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(crashing_consumer)
    assert await mailbox.receive_batch(10) == [1, 2, 3]


def test_statistics_is_a_frozen_record_and_repr_shows_fill() -> None:
    mailbox: Mailbox[int] = open_mailbox(3, name="orders")
    mailbox.send_nowait(1)
    stats = mailbox.statistics()
    assert stats == MailboxStatistics("orders", 3, 1, 0, 0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.buffered = 0  # type: ignore[misc]
    assert (mailbox.name, mailbox.capacity) == ("orders", 3)
    assert repr(mailbox) == "<Mailbox 'orders' 1/3>"
