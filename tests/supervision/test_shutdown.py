"""Stopping: reverse start order, per-child deadlines, failed starts, cancellation."""

from __future__ import annotations

import pytest
import trio

from motet.supervision import ChildSpec, ChildTaskStatus, Supervisor, SupervisorOptions

from ._journal import Action, Boom, Journal, scripted


def trapping(
    journal: Journal, child_id: str, *, cleanup: float | None, shutdown: float
) -> ChildSpec:
    """A child that traps shutdown; on request it cleans up for `cleanup` s, or
    ignores the request for ever when `cleanup` is None."""

    async def start(*, task_status: ChildTaskStatus) -> None:
        requested = task_status.trap_shutdown()
        task_status.started()
        journal.write("start", child_id)
        try:
            await requested.wait()
            journal.write("asked", child_id)
            if cleanup is None:
                await trio.sleep_forever()
            await trio.sleep(cleanup)
        except trio.Cancelled:
            journal.write("cancelled", child_id)
            raise
        journal.write("returned", child_id)

    return ChildSpec(child_id, start, shutdown=shutdown)


async def test_cancelling_stops_children_in_reverse_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, n) for n in "abc"], SupervisorOptions(on_event=journal.on_event)
    )
    with trio.move_on_after(3) as scope:
        await supervisor.run()
    assert scope.cancelled_caught, "Cancelled must come out of run(), not be swallowed"
    assert journal.entries[3:] == [
        ("cancelled", "c", 3.0),
        ("cancelled", "b", 3.0),
        ("cancelled", "a", 3.0),
    ]
    assert journal.event_kinds()[3:] == [("stopped", "c"), ("stopped", "b"), ("stopped", "a")]


async def test_each_child_gets_its_own_deadline_one_after_the_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [
            trapping(journal, "a", cleanup=None, shutdown=1.0),
            trapping(journal, "b", cleanup=0.5, shutdown=2.0),
            trapping(journal, "c", cleanup=None, shutdown=2.0),
        ]
    )
    with trio.move_on_after(10):
        await supervisor.run()
    assert journal.entries[3:] == [
        ("asked", "c", 10.0),
        ("cancelled", "c", 12.0),  # ignored the request: cancelled at its deadline
        ("asked", "b", 12.0),
        ("returned", "b", 12.5),  # finished its cleanup inside its deadline
        ("asked", "a", 12.5),
        ("cancelled", "a", 13.5),
    ]


async def test_zero_shutdown_is_a_brutal_kill_even_when_trapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor([trapping(journal, "a", cleanup=1.0, shutdown=0)])
    with trio.move_on_after(2):
        await supervisor.run()
    assert journal.entries[1:] == [("cancelled", "a", 2.0)]


async def test_terminating_a_sibling_for_a_restart_honours_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def failing(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)
        raise Boom("b")

    supervisor = Supervisor(
        [trapping(journal, "a", cleanup=None, shutdown=3.0), ChildSpec("b", failing)],
        SupervisorOptions(strategy="one_for_all", intensity=1),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(4.5)
        nursery.cancel_scope.cancel()
    assert journal.entries[:3] == [
        ("start", "a", 0.0),
        ("asked", "a", 1.0),
        ("cancelled", "a", 4.0),
    ]
    assert journal.times("start", "a") == [0.0, 4.0], "restart waited for the stop"


async def test_child_failing_to_start_fails_the_start_and_stops_earlier_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def broken(*, task_status: trio.TaskStatus[None]) -> None:
        await trio.sleep(1)
        raise Boom("no config")

    supervisor = Supervisor(
        [
            scripted(journal, "a"),
            scripted(journal, "b"),
            ChildSpec("broken", broken),
            scripted(journal, "never"),
        ],
        SupervisorOptions(name="root"),
    )
    async with trio.open_nursery() as nursery:
        with pytest.raises(Boom, match="no config") as info:
            await nursery.start(supervisor.run)
    assert "while starting child 'broken' of supervisor 'root'" in info.value.__notes__
    assert journal.steps() == [
        ("start", "a"),
        ("start", "b"),
        ("cancelled", "b"),
        ("cancelled", "a"),
    ]


async def test_child_returning_without_reporting_ready_fails_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def lazy(*, task_status: trio.TaskStatus[None]) -> None:
        return None

    with pytest.raises(RuntimeError, match=r"without calling task_status\.started"):
        await Supervisor([ChildSpec("lazy", lazy)]).run()


async def test_cancelled_while_a_child_is_starting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def slow(*, task_status: trio.TaskStatus[None]) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            journal.write("cancelled", "slow")
            raise

    supervisor = Supervisor([scripted(journal, "a"), ChildSpec("slow", slow)])
    with trio.move_on_after(2) as scope:
        await supervisor.run()
    assert scope.cancelled_caught
    assert journal.entries == [
        ("start", "a", 0.0),
        ("cancelled", "slow", 2.0),
        ("cancelled", "a", 2.0),
    ]


class Fatal(BaseException):
    """Not an Exception: a supervisor must not treat it as a child failure."""


async def test_base_exception_from_a_child_is_never_caught(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def fatal(*, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await trio.sleep(1)
        raise Fatal

    supervisor = Supervisor([scripted(journal, "a"), ChildSpec("fatal", fatal)])
    with pytest.RaisesGroup(Fatal):
        await supervisor.run()
    assert journal.steps() == [("start", "a"), ("cancelled", "a")]
    assert trio.current_time() == 1.0


async def test_cancelling_a_restarting_supervisor_lets_cancelled_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "w", *[_fail_now() for _ in range(3)])],
        SupervisorOptions(backoff=10.0, intensity=5),
    )
    reached_after_run = False
    with trio.move_on_after(5) as scope:
        await supervisor.run()
        reached_after_run = True
    assert scope.cancelled_caught and not reached_after_run
    # cancelled during the 10 s backoff: nothing was restarted
    assert journal.times("start", "w") == [0.0]
    assert supervisor.which_children()[0].running is False


def _fail_now() -> Action:
    async def action() -> None:
        raise Boom("now")

    return action


async def test_child_ready_just_as_the_supervisor_is_cancelled_is_not_shielded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # trio does not move a task whose starter is already cancelled; the child must then
    # stay cancellable, or nursery.start (and so the supervisor) would wait for ever.
    journal = Journal()
    statuses: list[ChildTaskStatus] = []

    async def just_in_time(*, task_status: ChildTaskStatus) -> None:
        statuses.append(task_status)
        with trio.CancelScope(shield=True):  # busy setting up while the cancel lands
            await trio.sleep(3)
        task_status.started()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            journal.write("cancelled", "late")
            raise

    supervisor = Supervisor([scripted(journal, "a"), ChildSpec("late", just_in_time)])
    with trio.move_on_after(2) as scope:
        await supervisor.run()
    assert scope.cancelled_caught
    assert not statuses[0].ready, "the race this test is about did not happen"
    assert journal.entries == [
        ("start", "a", 0.0),
        ("cancelled", "late", 3.0),
        ("cancelled", "a", 3.0),
    ]
