"""The one seam through which anything watches a runtime: `Observer`, a class of optional
no-op hooks in the spirit of `trio.abc.Instrument`, passed as `Runtime(observers=[...])`.

    class Count(Observer):
        def on_run(self, run): self.runs += 1

The runtime fans every event out once (`Observers`), calling only the observers that
override its hook; an event nobody observes costs nothing (a handler call is then not even
timed). Telemetry and the test harness are observers. Hooks run synchronously on the trio
thread, in the task that caused the event: they must be quick and must not block.

What an observer may read of the runtime is a `RuntimeView`, given to `on_start`: the steps,
subscriptions, cron jobs, backend, clock and logger, never the `Runtime` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from ._clock import Clock
    from ._envelope import Envelope, Subscription
    from ._errors import HandlerError
    from ._logging import Logger, LogRecord
    from ._status import CancelOutcome, MessageStatus
    from .actors._clock_actor import CronJob
    from .actors._dispatcher import HandlerRun
    from .actors._rate_gate import Throttling
    from .backends._protocol import Backend, StateChange
    from .project import ProjectConfig
    from .steps._model import Step

__all__ = ["HOOKS", "HttpExchange", "Observer", "Observers", "RuntimeView"]


@attrs.frozen(init=False)
class HttpExchange:
    """One HTTP request the gateway answered, as the gateway saw it."""

    method: str
    route: str | None  # the step's path template; None when no step route matched
    path: str
    status: int
    trace_id: str | None
    step: str | None
    duration: float  # seconds

    def __init__(
        self,
        method: str,
        route: str | None,
        path: str,
        status: int,
        trace_id: str | None,
        step: str | None,
        duration: float,
    ) -> None:
        # Each slot set by its own descriptor: attrs' frozen __init__ goes through
        # object.__setattr__ by name, and the gateway makes one per request.
        _set_method(self, method)
        _set_route(self, route)
        _set_path(self, path)
        _set_status(self, status)
        _set_trace_id(self, trace_id)
        _set_step(self, step)
        _set_duration(self, duration)


(
    _set_method,
    _set_route,
    _set_path,
    _set_status,
    _set_trace_id,
    _set_step,
    _set_duration,
) = (getattr(HttpExchange, a.name).__set__ for a in attrs.fields(HttpExchange))


class RuntimeView(Protocol):
    """What observers, telemetry and the console read of a runtime: nothing they could
    change it with."""

    @property
    def steps(self) -> Sequence[Step]: ...
    @property
    def subscriptions(self) -> Sequence[Subscription]: ...
    @property
    def cron_jobs(self) -> Sequence[CronJob]: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def project(self) -> ProjectConfig: ...
    @property
    def urls(self) -> Sequence[str]:
        """What the runtime serves, once its parts started."""
        ...

    def logger(self, **bound: Any) -> Logger: ...
    def running(self) -> Mapping[str, int]:
        """Handlers running now, by step."""
        ...

    def cron_running(self, name: str) -> bool:
        """Whether a tick of the schedule `name` is held by this process."""
        ...

    async def message(self, message_id: str) -> MessageStatus | None:
        """The status of every delivery of a message (`Runtime.message`)."""
        ...

    async def cancel(self, message_id: str) -> CancelOutcome:
        """Cancel a message (`Runtime.cancel`): the one change operators make through the
        view besides the backend's dead-letter calls, because a running handler here must
        be told."""
        ...

    def throttling(self) -> Mapping[str, Throttling]:
        """Rate-limited subscriptions by key: their limit, whether this process waits for a
        token with messages held back now, and how often and how long it did."""
        ...


class Observer:
    """Hooks into a runtime, each a no-op unless overridden."""

    def on_start(self, runtime: RuntimeView) -> None:
        """The runtime is starting (its backend not yet): `runtime` is what this observer
        may read from now on."""

    def on_envelope(self, envelope: Envelope, source: str | None) -> None:
        """The backend took a message; `source` is the emitting step (None: from outside)."""

    def on_run(self, run: HandlerRun) -> None:
        """A handler call finished (ok, error or timeout)."""

    def on_state(self, change: StateChange) -> None:
        """A handler's state write was stored (emitted inside the handler's run)."""

    def on_log(self, record: LogRecord) -> None:
        """A log record at or above the project's level."""

    def on_http(self, exchange: HttpExchange) -> None:
        """The gateway answered a request to a step route or an unknown path."""

    def on_settled(self) -> None:
        """A delivery reached the backend's books: acked, retried or buried."""

    def on_failure(self, failure: HandlerError) -> None:
        """A queue, cron or state handler failed (retried or not)."""


HOOKS = tuple(name for name in vars(Observer) if name.startswith("on_"))


class Observers(Observer):
    """Many observers as one: each hook calls, in order, the observers that override it.
    `watches(hook)` says whether any does, so a caller can skip the work of an event that
    nobody would see."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.observers = tuple(observers)
        self._watched: set[str] = set()
        for hook in HOOKS:
            calls = [
                getattr(o, hook)
                for o in self.observers
                if getattr(type(o), hook) is not getattr(Observer, hook)
            ]
            if calls:
                self._watched.add(hook)
                setattr(self, hook, calls[0] if len(calls) == 1 else _fan(calls))

    def watches(self, hook: str) -> bool:
        return hook in self._watched

    def hook(self, name: str) -> Callable[..., None] | None:
        """The fanned-out hook `name`, or None when no observer overrides it."""
        return getattr(self, name) if name in self._watched else None


def _fan(calls: Sequence[Callable[..., None]]) -> Callable[..., None]:
    def fan(*args: Any) -> None:
        for call in calls:
            call(*args)

    return fan
