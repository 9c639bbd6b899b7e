"""The handler context: logger, emit/enqueue, state, trace id, trigger, match."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._clock import Clock
from ._envelope import JSON
from ._errors import UndeclaredTopicError
from ._logging import Logger, report_lost_line
from .state._store import StateStore
from .steps._model import Step, Trigger

if TYPE_CHECKING:
    from .streams import Streams  # loaded only by projects that declare streams

_MISSING: Any = object()


@attrs.frozen
class MessageInfo:
    """`ctx.message` for queue, state and cron deliveries."""

    id: str
    attempt: int
    topic: str
    group: str | None = None


class Emitter(Protocol):
    async def publish(
        self,
        topic: str,
        data: Any,
        *,
        trace_id: str,
        group: str | None = None,
        priority: int = 0,
        source: str | None = None,
        delay: Any = None,
        at: Any = None,
        key: str | None = None,
        expires: Any = None,
    ) -> str: ...


class Services(Protocol):
    """What a context needs from the runtime (the dispatcher provides it)."""

    emitter: Emitter
    clock: Clock

    def state_store(self, trace_id: str) -> StateStore: ...

    def logger(
        self, step: str | None, trace_id: str, message: MessageInfo | None = None
    ) -> Logger: ...


class Context:
    """What a handler gets as `ctx`. One per handler call; cheap to build: the logger and
    the state store are made on first use (most handlers touch one of them, or none)."""

    __slots__ = (
        "_data",
        "_input",
        "_logger",
        "_services",
        "_state",
        "message",
        "step",
        "trace_id",
        "trigger",
    )

    def __init__(
        self,
        *,
        step: Step,
        trigger: Trigger,
        services: Services,
        trace_id: str,
        message: MessageInfo | None = None,
        data: Any = None,
        input: Any = _MISSING,
    ) -> None:
        self._services = services
        self.step = step
        self.trigger = trigger
        self.trace_id = trace_id
        self.message = message
        self._data = data
        # What the handler got as its first argument: the request for HTTP, else the input.
        self._input = data if input is _MISSING else input
        self._logger: Logger | None = None
        self._state: StateStore | None = None

    @property
    def logger(self) -> Logger:
        if self._logger is None:
            self._logger = self._services.logger(self.step.name, self.trace_id, self.message)
        return self._logger

    @property
    def state(self) -> StateStore:
        if self._state is None:
            self._state = self._services.state_store(self.trace_id)
        return self._state

    @property
    def streams(self) -> Streams:
        """The project's streams (`ctx.streams.<name>.set(group, id, data)`, ...): records
        clients follow live at `/_streams/{name}/{group}`."""
        return streams_of(self._services, self.step.name)

    async def emit(
        self,
        topic: Any,
        data: Any = _MISSING,
        *,
        group: str | None = None,
        priority: int = 0,
        delay: Any = None,
        at: Any = None,
        key: str | None = None,
        expires: Any = None,
    ) -> str:
        """`emit("topic", data)` or Motia's `emit({"topic": ..., "data": ...,
        "messageGroupId": ...})`. Returns the message id once the message is durable.

        `delay` (seconds, a timedelta or "5m") or `at` (an aware datetime) delivers it
        later, durably; `key` (an idempotency key) makes a repeat on the same topic within
        its dedup window return the first message's id and enqueue nothing; `expires` (a
        duration after it is due, or an aware datetime) ends it as an expired dead letter
        if no handler started it by then. The dict form takes the same keys."""
        if isinstance(topic, Mapping):
            event = topic
            unknown = set(event) - _EMIT_KEYS
            if unknown or "topic" not in event:
                raise TypeError(
                    f"step {self.step.name!r}: emit() takes a dict with 'topic', 'data' and "
                    f"optional 'messageGroupId'/'priority'/'delay'/'at'/'key'/'expires'; "
                    f"got keys {sorted(event)}"
                )
            topic = event["topic"]
            data = event.get("data")
            group = event.get("messageGroupId", event.get("group", group))
            priority = event.get("priority", priority)
            delay = event.get("delay", delay)
            at = event.get("at", at)
            key = event.get("key", event.get("idempotencyKey", key))
            expires = event.get("expires", expires)
        elif data is _MISSING:
            data = None
        if not isinstance(topic, str) or not topic:
            raise TypeError(
                f"step {self.step.name!r}: emit topic must be a non-empty string, got {topic!r}"
            )
        if topic not in self.step.enqueues:
            raise UndeclaredTopicError(self.step.name, topic, self.step.enqueues)
        if group is not None and not isinstance(group, str):
            raise TypeError(
                f"step {self.step.name!r}: message group must be a string, got {group!r}"
            )
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"step {self.step.name!r}: priority must be an int, got {priority!r}")
        return await self._services.emitter.publish(
            topic,
            data,
            trace_id=self.trace_id,
            group=group,
            priority=priority,
            source=self.step.name,
            **_later(delay=delay, at=at, key=key, expires=expires),
        )

    enqueue = emit

    async def message_status(self, message_id: str) -> Any:
        """The status of the message `message_id` (each delivery's state, attempts, last
        error, result), as `Runtime.message` gives it; None when unknown."""
        return await self._services.message_status(message_id)  # type: ignore[attr-defined]

    def now(self) -> datetime:
        """The current time (UTC) from the runtime's clock: virtual under MockClock in tests.
        Use it instead of datetime.now() so handlers stay testable."""
        return self._services.clock.now_datetime()

    def get_data(self) -> Any:
        """The trigger's input: the request body, the queue message, the state event; None
        for a cron tick (as in Motia: the tick is `ctx.tick`)."""
        return None if self.trigger.type == "cron" else self._data

    @property
    def tick(self) -> Any:
        """For a cron trigger, the tick: `{"step", "scheduled"}` (the scheduled time, ISO
        8601 UTC); None for other triggers."""
        return self._data if self.trigger.type == "cron" else None

    getData = get_data

    async def match(self, branches: Mapping[str, Callable[..., Any]]) -> Any:
        """Run the branch named after the trigger type ("http", "queue", "cron", "state");
        None when there is no such branch. A branch may be sync or async.

        As in Motia, a branch that takes one argument gets what the handler got: the request
        for "http", the message's input for "queue" and "state", the tick for "cron"; a
        branch that takes none is called without it."""
        branch = branches.get(self.trigger.type)
        if branch is None:
            return None
        result = call_branch(branch, self._input, self.step.name, self.trigger.type)
        if inspect.isawaitable(result):
            result = await result
        return result


_EMIT_KEYS = frozenset(
    {"topic", "data", "messageGroupId", "group", "priority", "delay", "at", "key"}
    | {"idempotencyKey", "expires"}
)


def _later(**options: Any) -> dict[str, Any]:
    """The delay/at/key/expires options that were given (the emitter checks them), so an
    emit without any calls the emitter exactly as before."""
    return {name: value for name, value in options.items() if value is not None}


class SyncContext:
    """The context a plain `def` handler gets in its worker thread: the same API, blocking.

    Each call hops back into trio with `trio.from_thread.run`, so emits are still durable
    before they return."""

    __slots__ = (
        "_ctx",
        "logger",
        "message",
        "now",
        "state",
        "step",
        "tick",
        "trace_id",
        "trigger",
    )

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.logger = _ThreadLogger(ctx.logger)
        self.message = ctx.message
        self.step = ctx.step
        self.trace_id = ctx.trace_id
        self.trigger = ctx.trigger
        self.state = _SyncState(ctx.state)
        self.now = ctx.now
        self.tick = ctx.tick

    @property
    def streams(self) -> Any:
        from .streams._service import sync_streams

        return sync_streams(self._ctx.streams, trio.from_thread.run)

    def emit(self, topic: Any, data: Any = _MISSING, **kwargs: Any) -> str:
        return trio.from_thread.run(lambda: self._ctx.emit(topic, data, **kwargs))

    def message_status(self, message_id: str) -> Any:
        return trio.from_thread.run(lambda: self._ctx.message_status(message_id))

    enqueue = emit

    def get_data(self) -> Any:
        return self._ctx.get_data()

    getData = get_data

    def match(self, branches: Mapping[str, Callable[..., Any]]) -> Any:
        branch = branches.get(self.trigger.type)
        if branch is None:
            return None
        return call_branch(branch, self._ctx._input, self.step.name, self.trigger.type)


def call_branch(branch: Callable[..., Any], value: Any, step: str, kind: str) -> Any:
    """Call a `ctx.match` branch with `value` when it takes one positional argument, with
    nothing when it takes none; any other signature is a TypeError that says which it must
    be (Motia's branches take one argument, or none)."""
    try:
        params = inspect.signature(branch).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): Motia's form
        return branch(value)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    takes_more = any(p.kind is p.VAR_POSITIONAL for p in params)
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if required <= 1 and (positional or takes_more) and not keyword_only:
        return branch(value)
    if required == 0 and not keyword_only:
        return branch()
    what = {"http": "the request", "cron": "the tick"}.get(kind, "the input")
    raise TypeError(
        f"step {step!r}: the ctx.match branch {kind!r} must take no argument or one "
        f"({what}); it is {getattr(branch, '__name__', 'a callable')}{inspect.signature(branch)}"
    )


class _SyncState:
    __slots__ = ("_store",)

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., JSON]:
        method: Callable[..., Awaitable[JSON]] = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> JSON:
            return trio.from_thread.run(lambda: method(*args, **kwargs))

        return call


class _ThreadLogger:
    """`ctx.logger` for a worker thread: records are made in trio's thread, in order."""

    __slots__ = ("_logger",)

    def __init__(self, logger: Logger) -> None:
        self._logger = logger

    def bind(self, **bound: Any) -> _ThreadLogger:
        return _ThreadLogger(self._logger.bind(**bound))

    def __getattr__(self, level: str) -> Callable[..., None]:
        method = getattr(self._logger, level)

        def log(*args: Any, **fields: Any) -> None:
            if fields.get("exc_info") is True:  # the failure being handled is this thread's
                fields["exc_info"] = sys.exc_info()[1]
            try:
                trio.from_thread.run_sync(lambda: method(*args, **fields))
            except Exception as exc:  # the runtime is gone: a log call never fails a handler
                report_lost_line(args[0] if args else "", exc)

        return log


def streams_of(services: object, step: str) -> Streams:
    """The runtime's `Streams` (the dispatcher carries them as `streams` when the project
    declares any)."""
    found: Streams | None = getattr(services, "streams", None)
    if found is None:
        raise AttributeError(
            f"step {step!r}: ctx.streams is empty: the project declares no stream (add a "
            "*.stream.py file with config = {'name': ...} to the steps folder)"
        )
    return found
