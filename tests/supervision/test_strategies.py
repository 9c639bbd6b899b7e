"""Which siblings a failure restarts, and in which order they stop and start."""

from __future__ import annotations

import trio

from motet.supervision import ChildStatus, Supervisor, SupervisorOptions

from ._journal import Journal, fail, scripted


async def run_abc(strategy: str, journal: Journal, **b_options: object) -> Supervisor:
    supervisor = Supervisor(
        [
            scripted(journal, "a"),
            scripted(journal, "b", fail(1.0), **b_options),  # type: ignore[arg-type]
            scripted(journal, "c"),
        ],
        SupervisorOptions(strategy=strategy, on_event=journal.on_event),  # type: ignore[arg-type]
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        journal.write("-- shutdown --", "")
        nursery.cancel_scope.cancel()
    return supervisor


START = [("start", "a"), ("start", "b"), ("start", "c")]
SHUTDOWN = [("-- shutdown --", ""), ("cancelled", "c"), ("cancelled", "b"), ("cancelled", "a")]


async def test_one_for_one_restarts_only_the_failed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    await run_abc("one_for_one", journal)
    assert journal.steps() == [*START, ("raised", "b"), ("start", "b"), *SHUTDOWN]


async def test_one_for_all_stops_others_in_reverse_then_starts_all_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = await run_abc("one_for_all", journal)
    assert journal.steps() == [
        *START,
        ("raised", "b"),
        ("cancelled", "c"),
        ("cancelled", "a"),
        *START,
        *SHUTDOWN,
    ]
    assert journal.event_kinds()[3:9] == [
        ("exited", "b"),
        ("stopped", "c"),
        ("stopped", "a"),
        ("restarted", "a"),
        ("restarted", "b"),
        ("restarted", "c"),
    ]
    assert [c.restarts for c in supervisor.which_children()] == [1, 1, 1]


async def test_rest_for_one_restarts_the_child_and_those_started_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    await run_abc("rest_for_one", journal)
    assert journal.steps() == [
        *START,
        ("raised", "b"),
        ("cancelled", "c"),
        ("start", "b"),
        ("start", "c"),
        *SHUTDOWN,
    ]


async def test_rest_for_one_on_the_last_child_is_one_for_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "a"), scripted(journal, "b"), scripted(journal, "c", fail(1.0))],
        SupervisorOptions(strategy="rest_for_one"),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert journal.steps()[:5] == [*START, ("raised", "c"), ("start", "c")]


async def test_one_for_all_drops_a_temporary_sibling_it_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [
            scripted(journal, "temp", restart="temporary"),
            scripted(journal, "b", fail(1.0)),
            scripted(journal, "trans", restart="transient"),
        ],
        SupervisorOptions(strategy="one_for_all"),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        children = supervisor.which_children()
        nursery.cancel_scope.cancel()
    # a transient sibling stopped by the supervisor is restarted; a temporary one never
    assert children == (ChildStatus("b", True, 1), ChildStatus("trans", True, 1))
    assert journal.times("start", "temp") == [0.0]
    assert journal.times("cancelled", "temp") == [1.0]


async def test_one_for_all_temporary_child_exit_restarts_nobody(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "a"), scripted(journal, "t", fail(1.0), restart="temporary")],
        SupervisorOptions(strategy="one_for_all"),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(5)
        children = supervisor.which_children()
        nursery.cancel_scope.cancel()
    assert children == (ChildStatus("a", True, 0),)
    assert journal.times("start", "a") == [0.0]
