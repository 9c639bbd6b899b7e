"""One run of one child: its cancel scope, its task status and how it ended.

A child runs inside its own cancel scope. Until it reports ready the scope is not
shielded, so cancelling the supervisor also cancels a child that is still starting.
Once it is ready the scope is shielded: only the supervisor stops it, one child at a
time in reverse start order, each within its `shutdown` deadline.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from ._spec import ChildSpec


@attrs.define(eq=False)
class Incarnation:
    """Mutable record of one start of a child, owned by the supervisor's task."""

    spec: ChildSpec
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    status: ChildTaskStatus | None = None
    task: trio.lowlevel.Task | None = None
    # Set by the supervisor before it stops the child: the exit is then expected
    # and must not trigger a restart.
    stopping: bool = False
    error: Exception | None = None


class ChildTaskStatus(trio.TaskStatus[Any]):
    """The `task_status` a supervised child receives.

    It is a trio `TaskStatus` (call `started(value)` once ready), plus OTP's
    "trap exits" in trio terms: a child that calls `trap_shutdown()` is asked to stop
    by setting the returned event and gets its `shutdown` deadline to return by
    itself; a child that never calls it is cancelled at once when stopped.
    """

    __slots__ = ("_incarnation", "_moved", "_real", "_shutdown", "_started")

    def __init__(self, real: trio.TaskStatus[Any], incarnation: Incarnation) -> None:
        self._real = real
        self._incarnation = incarnation
        self._started = False
        self._moved = False
        self._shutdown: trio.Event | None = None

    def __repr__(self) -> str:
        return f"<ChildTaskStatus of {self._incarnation.spec.id!r}>"

    def started(self, value: Any = None) -> None:
        if self._started:
            raise RuntimeError(
                f"child {self._incarnation.spec.id!r} called task_status.started() twice"
            )
        self._started = True
        task = self._incarnation.task
        assert task is not None, "the wrapper records its task before starting the child"
        before = task.parent_nursery
        self._real.started(value)
        # trio leaves the task where it is when the starter was cancelled meanwhile;
        # it must then stay cancellable, so it is shielded only once really moved.
        if task.parent_nursery is not before:
            self._moved = True
            self._incarnation.scope.shield = True

    @property
    def ready(self) -> bool:
        """True once `started()` handed the child over to the supervisor's nursery."""
        return self._moved

    def trap_shutdown(self) -> trio.Event:
        """Opt in to graceful shutdown; the event is set when the supervisor stops us."""
        if self._shutdown is None:
            self._shutdown = trio.Event()
        return self._shutdown

    @property
    def traps_shutdown(self) -> bool:
        return self._shutdown is not None

    @property
    def shutdown_requested(self) -> bool:
        return self._shutdown is not None and self._shutdown.is_set()

    def request_shutdown(self) -> None:
        if self._shutdown is not None:
            self._shutdown.set()
