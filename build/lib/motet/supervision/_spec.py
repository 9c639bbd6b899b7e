"""What a supervisor is told: child specs and supervisor options, in OTP's words.

    restart type   what happens when the child exits by itself
    ------------   ----------------------------------------------------------
    permanent      always restarted (a normal return is unexpected, too)
    transient      restarted only if it raised
    temporary      never restarted; also dropped when a sibling's restart stops it

    strategy       which children are restarted when one must be
    ------------   ----------------------------------------------------------
    one_for_one    only the child that exited
    one_for_all    every child: the others are stopped (reverse start order),
                   then all are started again in start order
    rest_for_one   the child and every child started after it

More than `intensity` restarts within `period` seconds (trio time) makes the
supervisor stop its children and raise `SupervisorGaveUp` to its parent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._backoff import Backoff
from .._validators import count, non_empty, one_of, seconds

if TYPE_CHECKING:
    from ._event import SupervisorEvent

RestartType = Literal["permanent", "transient", "temporary"]
RestartStrategy = Literal["one_for_one", "one_for_all", "rest_for_one"]

RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")
RESTART_STRATEGIES: tuple[RestartStrategy, ...] = ("one_for_one", "one_for_all", "rest_for_one")

# `start(*, task_status)`: run with `nursery.start`, so it must call
# `task_status.started(value)` once it is ready to serve.
StartFn = Callable[..., Awaitable[Any]]


def _callable(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be an async callable "
            f"start(*, task_status), got {value!r}"
        )


@attrs.frozen
class ChildSpec:
    """One supervised child.

    `shutdown` is this child's deadline, in seconds, once the supervisor asks it to
    stop. A child that trapped shutdown (`task_status.trap_shutdown()`) gets that long
    to return by itself; then, as for a child that did not trap it, its cancel scope
    is cancelled. `0` is OTP's brutal_kill, `math.inf` waits for ever.
    """

    id: str = attrs.field(validator=non_empty())
    start: StartFn = attrs.field(validator=_callable)
    restart: RestartType = attrs.field(default="permanent", validator=one_of(*RESTART_TYPES))
    shutdown: float = attrs.field(default=5.0, validator=seconds(allow_zero=True, allow_inf=True))


@attrs.frozen
class SupervisorOptions:
    """How a supervisor restarts its children and when it gives up.

    Restarts back off: the n-th restart inside the current `period` window waits
    `backoff * 2**(n-1)` seconds, at most `backoff_cap` (trio time, so `MockClock`
    drives it). With the default `backoff=0` restarts are immediate.
    `on_event` is called synchronously for every `SupervisorEvent`; if it raises,
    the supervisor fails with that error.
    """

    strategy: RestartStrategy = attrs.field(
        default="one_for_one", validator=one_of(*RESTART_STRATEGIES)
    )
    intensity: int = attrs.field(default=3, validator=count(minimum=0))
    period: float = attrs.field(default=5.0, validator=seconds(allow_inf=True))
    backoff: float = attrs.field(default=0.0, validator=seconds(allow_zero=True))
    backoff_cap: float = attrs.field(default=30.0, validator=seconds(allow_zero=True))
    name: str = attrs.field(default="supervisor", validator=non_empty())
    on_event: Callable[[SupervisorEvent], None] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.is_callable())
    )

    @property
    def restart_backoff(self) -> Backoff:
        """The wait before the n-th restart of the current window."""
        return Backoff(initial=self.backoff, cap=self.backoff_cap)


# -- what intensity, period and backoff mean -------------------------------------


class RestartWindow:
    """Counts restarts inside a sliding window of `period` seconds of trio time.

    Invariant: `_times` holds only restarts later than `now - period` for the last
    `now` recorded, oldest first.
    """

    __slots__ = ("_period", "_times")

    def __init__(self, period: float) -> None:
        self._period = period
        self._times: deque[float] = deque()

    def record(self, now: float) -> int:
        """Record a restart at `now`; return how many fall inside the window."""
        self._times.append(now)
        horizon = now - self._period
        while self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)
