"""Restart types x outcomes, restart intensity within a period, escalation, backoff, and
what a crashed run leaves behind."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable

import pytest
import trio

from motet._errors import SupervisorGaveUp
from motet.supervision import ChildSpec, ChildStatus, Supervisor, SupervisorOptions

from .._collector import Held, collector_off, watched
from ._journal import Boom, Journal, fail, finish, scripted


async def run_for(supervisor: Supervisor, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("restart", "outcome", "restarted"),
    [
        ("permanent", "return", True),
        ("permanent", "raise", True),
        ("transient", "return", False),
        ("transient", "raise", True),
        ("temporary", "return", False),
        ("temporary", "raise", False),
    ],
)
async def test_restart_type_decides_on_exit(
    autojump_clock: trio.testing.MockClock, restart: str, outcome: str, restarted: bool
) -> None:
    journal = Journal()
    action = finish(1.0) if outcome == "return" else fail(1.0)
    spec = scripted(journal, "w", action, restart=restart)  # type: ignore[arg-type]
    sibling = scripted(journal, "s")
    supervisor = Supervisor([spec, sibling], SupervisorOptions(on_event=journal.on_event))

    await run_for(supervisor, 10)

    assert journal.times("start", "w") == ([0.0, 1.0] if restarted else [0.0])
    assert journal.times("start", "s") == [0.0], "one_for_one never touches a sibling"
    ended = "returned" if outcome == "return" else "raised"
    assert journal.times(ended, "w") == [1.0]
    exited = [e for e in journal.events if e.kind == "exited"]
    assert [(e.child, type(e.error)) for e in exited] == [
        ("w", type(None) if outcome == "return" else Boom)
    ]


async def test_child_not_restarted_is_dropped_and_restarted_one_counts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [
            scripted(journal, "keeps", fail(1.0)),
            scripted(journal, "done", finish(1.0), restart="transient"),
        ]
    )
    seen: list[tuple[ChildStatus, ...]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        seen.append(supervisor.which_children())
        await trio.sleep(5)
        seen.append(supervisor.which_children())
        nursery.cancel_scope.cancel()
    assert seen == [
        (ChildStatus("keeps", True, 0), ChildStatus("done", True, 0)),
        (ChildStatus("keeps", True, 1),),
    ]


async def test_gives_up_after_intensity_plus_one_failures_inside_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    failures = [fail(1.0, f"failure {n}") for n in range(1, 10)]
    supervisor = Supervisor(
        [scripted(journal, "w", *failures), scripted(journal, "s")],
        SupervisorOptions(intensity=3, period=5.0, name="root", on_event=journal.on_event),
    )

    with pytest.raises(SupervisorGaveUp) as info:
        await supervisor.run()

    # failures at t=1, 2, 3 are restarted; the 4th inside 5 s is one too many
    assert journal.times("raised", "w") == [1.0, 2.0, 3.0, 4.0]
    assert trio.current_time() == 4.0
    assert journal.times("start", "w") == [0.0, 1.0, 2.0, 3.0]
    gave_up = info.value
    assert (gave_up.supervisor, gave_up.child, gave_up.restarts, gave_up.period) == (
        "root",
        "w",
        3,
        5.0,
    )
    assert "'root' gave up" in str(gave_up) and "'w'" in str(gave_up)
    assert isinstance(gave_up.__cause__, Boom)
    assert str(gave_up.__cause__) == "failure 4", "chained to the LAST failure"
    # the surviving sibling was stopped before the error escaped
    assert journal.times("cancelled", "s") == [4.0]
    assert journal.event_kinds()[-3:] == [("exited", "w"), ("gave_up", "w"), ("stopped", "s")]


async def test_failures_spread_wider_than_period_never_give_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    failures = [fail(2.0) for _ in range(20)]
    supervisor = Supervisor(
        [scripted(journal, "w", *failures)], SupervisorOptions(intensity=3, period=5.0)
    )

    await run_for(supervisor, 29)

    # a failure every 2 s leaves at most 3 inside any 5 s window (t-5, t]
    assert journal.times("raised", "w") == [float(t) for t in range(2, 29, 2)]
    # it ended by the cancellation, not by a give-up
    assert journal.times("cancelled", "w") == [29.0]
    assert supervisor.which_children() == (ChildStatus("w", running=False, restarts=14),)


async def test_intensity_zero_gives_up_on_first_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor([scripted(journal, "w", fail(1.0))], SupervisorOptions(intensity=0))
    with pytest.raises(SupervisorGaveUp) as info:
        await supervisor.run()
    assert isinstance(info.value.__cause__, Boom)
    assert journal.times("start", "w") == [0.0]


async def test_permanent_child_returning_in_a_loop_gives_up_without_a_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "w", *[finish(0.5) for _ in range(5)])],
        SupervisorOptions(intensity=2, period=10.0),
    )
    with pytest.raises(SupervisorGaveUp) as info:
        await supervisor.run()
    assert info.value.__cause__ is None
    assert journal.times("returned", "w") == [0.5, 1.0, 1.5]


async def test_escalation_reaches_the_parent_chained_through_each_level(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    inner = Supervisor(
        [scripted(journal, "leaf", *[fail(1.0, f"leaf {n}") for n in range(1, 10)])],
        SupervisorOptions(intensity=1, period=10.0, name="inner"),
    )
    outer = Supervisor(
        [ChildSpec("inner", inner.run)],
        SupervisorOptions(intensity=1, period=100.0, name="outer"),
    )

    with pytest.raises(SupervisorGaveUp) as info:
        await outer.run()

    assert info.value.supervisor == "outer" and info.value.child == "inner"
    inner_gave_up = info.value.__cause__
    assert isinstance(inner_gave_up, SupervisorGaveUp) and inner_gave_up.supervisor == "inner"
    assert isinstance(inner_gave_up.__cause__, Boom)
    assert str(inner_gave_up.__cause__) == "leaf 4"
    # the outer restarted the inner once; the restarted inner began with its own specs
    assert journal.times("start", "leaf") == [0.0, 1.0, 2.0, 3.0]


async def test_restart_backoff_doubles_and_is_capped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "w", *[fail(0.0) for _ in range(5)])],
        SupervisorOptions(intensity=10, period=100.0, backoff=1.0, backoff_cap=3.0),
    )
    await run_for(supervisor, 20)
    # delays 1, 2, 3 (capped), 3, 3
    assert journal.times("start", "w") == [0.0, 1.0, 3.0, 6.0, 9.0, 12.0]


async def test_no_backoff_by_default_restarts_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor([scripted(journal, "w", fail(1.0), fail(0.0))])
    await run_for(supervisor, 5)
    assert journal.times("start", "w") == [0.0, 1.0, 1.0]


async def test_child_failing_to_start_during_restart_counts_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    starts = 0

    async def flaky(*, task_status: trio.TaskStatus[None]) -> None:
        nonlocal starts
        starts += 1
        if starts > 1:
            raise Boom(f"cannot start #{starts}")
        task_status.started()
        await trio.sleep(1)
        raise Boom("crashed")

    supervisor = Supervisor(
        [ChildSpec("flaky", flaky)],
        SupervisorOptions(intensity=2, period=10.0, on_event=journal.on_event),
    )
    with pytest.raises(SupervisorGaveUp) as info:
        await supervisor.run()
    assert str(info.value.__cause__) == "cannot start #3"
    assert starts == 3
    assert [e.kind for e in journal.events] == [
        "started",
        "exited",
        "exited",
        "exited",
        "gave_up",
    ]


async def test_a_crashed_run_is_freed_once_its_child_is_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The error's traceback holds the run's task frame, which holds the run: a run that
    # kept its error would be a reference cycle, which `motet start` (freezing start-up's
    # objects) would keep for the life of the process. The collector is off meanwhile.
    held: list[weakref.ref[Held]] = []

    async def crashes_once(*, task_status: trio.TaskStatus[None]) -> None:
        payload = watched(held)  # noqa: F841 (the frame holds it)
        task_status.started()
        if len(held) == 1:
            await trio.sleep(1)
            raise Boom("crashed")
        await trio.sleep_forever()

    await _restarted_once_and_freed(crashes_once, held)


async def test_a_run_crashed_in_a_task_of_its_own_is_freed_once_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # An actor runs tasks of its own: its crash comes out of its nursery as a group, which
    # the supervisor splits (the failure is the exit reason, the cancellations go on).
    held: list[weakref.ref[Held]] = []

    async def fails(payload: Held) -> None:
        await trio.sleep(1)
        raise Boom("crashed")

    async def crashes_once(*, task_status: trio.TaskStatus[None]) -> None:
        payload = watched(held)
        async with trio.open_nursery() as tasks:
            tasks.start_soon(trio.sleep_forever)
            task_status.started()
            if len(held) == 1:
                tasks.start_soon(fails, payload)
            await trio.sleep_forever()

    await _restarted_once_and_freed(crashes_once, held)


async def _restarted_once_and_freed(
    start: Callable[..., Awaitable[None]], held: list[weakref.ref[Held]]
) -> None:
    """Run `start` supervised, with the collector off, until it was restarted once: its
    crashed run's payload must be freed by then."""
    with collector_off():
        async with trio.open_nursery() as nursery:
            await nursery.start(Supervisor([ChildSpec("w", start)]).run)
            await trio.sleep(5)
            assert len(held) == 2, "restarted once"
            assert held[0]() is None, "the crashed run's frame is kept"
            nursery.cancel_scope.cancel()
