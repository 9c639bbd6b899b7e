"""start_child / terminate_child / which_children, and a restarted consumer's mailbox."""

from __future__ import annotations

import weakref

import pytest
import trio

from motet.actors._mailbox import Mailbox, open_mailbox
from motet.supervision import (
    ChildSpec,
    ChildStatus,
    ChildTaskStatus,
    Supervisor,
    SupervisorOptions,
)

from .._collector import Held, collector_off, watched
from ._journal import Boom, Journal, fail, scripted


async def test_start_child_appends_returns_ready_value_and_is_supervised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor([scripted(journal, "a")], SupervisorOptions(on_event=journal.on_event))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        value = await supervisor.start_child(scripted(journal, "late", fail(1.0)))
        assert value == "late"
        assert supervisor.which_children() == (
            ChildStatus("a", True, 0),
            ChildStatus("late", True, 0),
        )
        await trio.sleep(2)
        assert supervisor.which_children()[1] == ChildStatus("late", True, 1)
        nursery.cancel_scope.cancel()
    # the dynamic child was started last, so it is stopped first
    assert journal.steps()[-2:] == [("cancelled", "late"), ("cancelled", "a")]
    assert ("started", "late") in journal.event_kinds()


async def test_start_child_refuses_a_taken_id(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    supervisor = Supervisor([scripted(journal, "a")], SupervisorOptions(name="sup"))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(ValueError, match="'sup' already has a child with id 'a'"):
            await supervisor.start_child(scripted(journal, "a"))
        with pytest.raises(TypeError, match="expects a ChildSpec"):
            await supervisor.start_child("a")  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()
    assert journal.times("start", "a") == [0.0]


async def test_start_child_failure_is_raised_to_the_caller_and_not_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def broken(*, task_status: trio.TaskStatus[None]) -> None:
        raise Boom("bad config")

    journal = Journal()
    supervisor = Supervisor([scripted(journal, "a")])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(Boom, match="bad config"):
            await supervisor.start_child(ChildSpec("broken", broken))
        assert [c.id for c in supervisor.which_children()] == ["a"]
        # the supervisor is still serving calls
        assert await supervisor.start_child(scripted(journal, "b")) == "b"
        nursery.cancel_scope.cancel()


async def test_a_failed_start_child_is_freed_without_the_collector(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The error's traceback holds the frames of the supervisor's answer and of the call,
    # which hold the call: a call that kept its error would be a reference cycle, kept
    # until the collector's next pass (forever, if it was frozen). The collector is off.
    held: list[weakref.ref[Held]] = []

    async def broken(*, task_status: trio.TaskStatus[None]) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        raise Boom("bad config")

    supervisor = Supervisor()
    with collector_off():
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            for _ in range(2):
                with pytest.raises(Boom, match="bad config"):
                    await supervisor.start_child(ChildSpec("broken", broken))
            assert [ref() for ref in held] == [None, None], "a failed start's frame is kept"
            nursery.cancel_scope.cancel()


async def test_a_stopped_child_with_tasks_of_its_own_is_freed_without_the_collector(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A child running a nursery of its own is stopped through a group of cancellations; a
    # frame that kept the group (or a part split off it) would hold the child's frames in a
    # cycle, and `motet start` has frozen an actor's frames out of the collector's reach.
    held: list[weakref.ref[Held]] = []

    async def busy(*, task_status: trio.TaskStatus[None]) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        async with trio.open_nursery() as tasks:
            tasks.start_soon(trio.sleep_forever)
            task_status.started()
            await trio.sleep_forever()

    supervisor = Supervisor()
    with collector_off():
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await supervisor.start_child(ChildSpec("busy", busy))
            await trio.sleep(1)
            await supervisor.terminate_child("busy")
            assert [ref() for ref in held] == [None], "the stopped child's frame is kept"
            nursery.cancel_scope.cancel()


async def test_terminate_child_stops_within_deadline_and_forgets_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    stopped_at: list[float] = []

    async def stubborn(*, task_status: ChildTaskStatus) -> None:
        task_status.trap_shutdown()  # asked, but never looks
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            stopped_at.append(trio.current_time())

    supervisor = Supervisor(
        [scripted(journal, "a"), ChildSpec("stubborn", stubborn, shutdown=4.0)],
        SupervisorOptions(on_event=journal.on_event),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(1)
        await supervisor.terminate_child("stubborn")
        assert stopped_at == [5.0]
        assert supervisor.which_children() == (ChildStatus("a", True, 0),)
        with pytest.raises(KeyError, match="no child 'stubborn'"):
            await supervisor.terminate_child("stubborn")
        # reload: the same id can be started again
        await supervisor.start_child(scripted(journal, "stubborn"))
        assert [c.id for c in supervisor.which_children()] == ["a", "stubborn"]
        nursery.cancel_scope.cancel()
    assert ("stopped", "stubborn") in journal.event_kinds()
    assert journal.times("start", "a") == [0.0], "terminate_child restarts nobody"


async def test_calls_on_a_supervisor_that_is_not_running_are_refused() -> None:
    journal = Journal()
    supervisor = Supervisor([scripted(journal, "a")], SupervisorOptions(name="idle"))
    with pytest.raises(trio.ClosedResourceError, match="'idle' is not running"):
        await supervisor.start_child(scripted(journal, "b"))
    with pytest.raises(trio.ClosedResourceError):
        await supervisor.terminate_child("a")


async def test_a_running_supervisor_cannot_be_run_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    supervisor = Supervisor([], SupervisorOptions(name="once"))
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        with pytest.raises(RuntimeError, match="'once' is already running"):
            await supervisor.run()
        nursery.cancel_scope.cancel()


async def test_a_child_calling_its_own_supervisor_while_starting_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor: Supervisor

    async def greedy(*, task_status: trio.TaskStatus[None]) -> None:
        # would deadlock (the supervisor waits for this start); refused instead
        await supervisor.start_child(scripted(journal, "other"))

    supervisor = Supervisor([ChildSpec("greedy", greedy)])
    with pytest.raises(trio.ClosedResourceError):
        await supervisor.run()


async def test_restarted_consumer_receives_what_was_queued_before_its_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The mailbox belongs to whoever builds the spec (as the runtime does), not to the
    # consumer task, so a restart reads the same buffer.
    mailbox: Mailbox[str] = open_mailbox(10, name="orders")
    handled: list[str] = []
    runs = 0

    async def consumer(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal runs
        runs += 1
        task_status.started()
        while True:
            item = await mailbox.receive()
            if item == "poison":
                raise Boom("bad message")
            handled.append(item)

    for item in ["o1", "o2", "poison", "o3", "o4"]:
        mailbox.send_nowait(item)
    supervisor = Supervisor([ChildSpec("consumer", consumer)])
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.testing.wait_all_tasks_blocked()
        await mailbox.send("o5")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert runs == 2
    assert handled == ["o1", "o2", "o3", "o4", "o5"]
    assert mailbox.statistics().buffered == 0


async def test_a_call_waiting_when_the_supervisor_stops_is_answered_with_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "a", fail(1.0)), scripted(journal, "b")],
        SupervisorOptions(backoff=10.0, name="busy"),
    )
    outcome: list[BaseException] = []

    async def caller() -> None:
        try:
            await supervisor.terminate_child("b")
        except trio.ClosedResourceError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as callers, trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(2)  # now inside a's 10 s restart backoff
        callers.start_soon(caller)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert len(outcome) == 1 and "'busy' stopped before answering" in str(outcome[0])
    assert journal.times("cancelled", "b") == [3.0]
