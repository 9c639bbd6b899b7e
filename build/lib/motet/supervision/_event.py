"""What a supervisor tells its observer, and what `which_children` reports."""

from __future__ import annotations

from typing import Literal

import attrs

EventKind = Literal["started", "exited", "restarted", "stopped", "gave_up"]


@attrs.frozen
class SupervisorEvent:
    """One thing that happened to one child, at trio time `time`.

    kind       meaning                                           error
    ---------  ------------------------------------------------  -------------------------
    started    the child reported ready (initial or start_child)  None
    exited     it returned or raised by itself, or failed to      what it raised, or None
               start during a restart                             for a normal return
    restarted  it was started again by the restart strategy      None
    stopped    the supervisor stopped it (shutdown, sibling       what it raised while
               restart or terminate_child)                        stopping, if anything
    gave_up    restart intensity exceeded; the supervisor stops  the last failure
    """

    kind: EventKind
    supervisor: str
    child: str
    time: float
    restarts: int
    error: BaseException | None = None


@attrs.frozen
class ChildStatus:
    """One child as `Supervisor.which_children()` sees it.

    `running` is false only while a restart is in progress (between stopping and
    starting again, including the backoff delay).
    """

    id: str
    running: bool
    restarts: int
