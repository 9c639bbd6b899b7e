"""The observer hook: what it is told, and that its errors are not swallowed."""

from __future__ import annotations

import pytest
import trio

from motet.supervision import (
    ChildSpec,
    ChildTaskStatus,
    Supervisor,
    SupervisorEvent,
    SupervisorOptions,
)

from ._journal import Boom, Journal, fail, scripted


async def test_observer_sees_the_whole_lifecycle_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor(
        [scripted(journal, "w", fail(1.0, "first"))],
        SupervisorOptions(name="sup", on_event=journal.on_event),
    )
    with trio.move_on_after(2):
        await supervisor.run()
    assert [(e.kind, e.time, e.restarts) for e in journal.events] == [
        ("started", 0.0, 0),
        ("exited", 1.0, 0),
        ("restarted", 1.0, 1),
        ("stopped", 2.0, 1),
    ]
    exited = journal.events[1]
    assert isinstance(exited.error, Boom) and str(exited.error) == "first"
    assert all(e.supervisor == "sup" and e.child == "w" for e in journal.events)


async def test_an_observer_that_raises_fails_the_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    def picky(event: SupervisorEvent) -> None:
        if event.kind == "exited":
            raise LookupError("observer bug")

    supervisor = Supervisor(
        [scripted(journal, "w", fail(1.0)), scripted(journal, "s")],
        SupervisorOptions(on_event=picky),
    )
    with pytest.RaisesGroup(pytest.RaisesExc(LookupError, match="observer bug")):
        await supervisor.run()
    # nothing was left running behind the error
    assert journal.steps()[-1] == ("cancelled", "s")


async def test_an_error_raised_while_stopping_is_reported_on_the_stopped_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()

    async def messy(*, task_status: ChildTaskStatus) -> None:
        shutdown = task_status.trap_shutdown()
        task_status.started()
        await shutdown.wait()
        raise Boom("cleanup failed")

    supervisor = Supervisor(
        [ChildSpec("messy", messy)], SupervisorOptions(on_event=journal.on_event)
    )
    with trio.move_on_after(1):
        await supervisor.run()
    stopped = journal.events[-1]
    assert stopped.kind == "stopped" and isinstance(stopped.error, Boom)
