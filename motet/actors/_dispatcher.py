"""Runs handlers: builds each call's context and calls the handler the way its step wants.

Shared by the step actors (queue, cron and state deliveries) and, through the gateway's
`RuntimeInvoker` adapter, by HTTP requests, so a handler is called the same way whatever
triggered it. Nothing here knows HTTP beyond the handler's `Request` record.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from .._clock import Clock
from .._context import Context, Emitter, MessageInfo, SyncContext
from .._envelope import random_id
from .._errors import AsyncioRequired, HandlerTimeout
from .._logging import Logger, LogHub
from .._status import MessageStatus, check_message_id
from .._traceback import format_failure
from ..backends._protocol import MessageBackend, StateBackend, StateChange
from ..state._store import Jsonify, StateStore
from ..steps._handlers import condition_wants_ctx, cron_wants_input
from ..steps._http import Request
from ..steps._model import CronTrigger, HttpTrigger, Step, Trigger
from ._asyncio import MOCK_CLOCK_GRACE, AsyncioLoop, asyncio_needed, autojumping, busy_while


@attrs.frozen(init=False)
class HandlerRun:
    """One finished handler call, as observers (traces, metrics, tests) see it."""

    step: str
    trigger: str  # trigger type
    trace_id: str
    message_id: str | None
    attempt: int | None
    started: float  # epoch seconds
    duration: float  # seconds
    outcome: str  # "ok" | "error" | "timeout"
    error: str | None = None
    run_id: str = ""  # unique per call while observers are attached (the trace span id)
    topic: str | None = None  # the delivered message's topic (queue, cron, state)
    traceback: str | None = None  # when the handler raised: `format_failure` of the error

    def __init__(
        self,
        step: str,
        trigger: str,
        trace_id: str,
        message_id: str | None,
        attempt: int | None,
        started: float,
        duration: float,
        outcome: str,
        error: str | None = None,
        run_id: str = "",
        topic: str | None = None,
        traceback: str | None = None,
    ) -> None:
        # Each slot set by its own descriptor (as `Envelope` does): attrs' frozen __init__
        # goes through object.__setattr__ by name, and a record is made per observed run.
        _set_step(self, step)
        _set_trigger(self, trigger)
        _set_trace_id(self, trace_id)
        _set_message_id(self, message_id)
        _set_attempt(self, attempt)
        _set_started(self, started)
        _set_duration(self, duration)
        _set_outcome(self, outcome)
        _set_error(self, error)
        _set_run_id(self, run_id)
        _set_topic(self, topic)
        _set_traceback(self, traceback)


(
    _set_step,
    _set_trigger,
    _set_trace_id,
    _set_message_id,
    _set_attempt,
    _set_started,
    _set_duration,
    _set_outcome,
    _set_error,
    _set_run_id,
    _set_topic,
    _set_traceback,
) = (getattr(HandlerRun, a.name).__set__ for a in attrs.fields(HandlerRun))

HandlerObserver = Callable[[HandlerRun], None]

# The run id of the handler call running in this task (and in the threads and from_thread
# calls it makes), so emits and state writes can be attributed to the run that made them.
# Set only while observers are attached.
CURRENT_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "motet_current_run", default=None
)


class Dispatcher:
    def __init__(
        self,
        *,
        emitter: Emitter,
        state: StateBackend,
        jsonify: Jsonify,
        hub: LogHub,
        clock: Clock,
        on_run: HandlerObserver | None = None,
        on_state: Callable[[StateChange], None] | None = None,
        messages: MessageBackend | None = None,
        handlers: str = "trio",
    ) -> None:
        self.emitter = emitter
        self._state = state
        self._jsonify = jsonify
        self.hub = hub
        self.clock = clock
        self.running: Counter[str] = Counter()  # step name -> handlers running now
        # The runtime's observers (`motet.Observer`); None when none watches.
        self._on_run = on_run
        # An observed call is timed twice by trio's clock: its reader, as trio.current_time()
        # reaches it through two frames of lookups (the dispatcher is made inside trio.run).
        self._trio_now = trio.lowlevel.current_clock().current_time
        self._on_state = on_state
        self._messages = messages
        self._arity: dict[int, bool] = {}  # id(handler) -> a cron handler takes (input, ctx)
        self._async: dict[int, bool] = {}  # id(handler) -> is a coroutine function
        self._wants_ctx: dict[int, bool] = {}  # id(condition) -> called as (input, ctx)
        # How `async def` handlers run when their step does not say: "trio" or "asyncio".
        self.handlers = handlers
        self.asyncio_loop = AsyncioLoop()  # started at its first use

    def close(self) -> None:
        """Stop what the dispatcher started (the asyncio loop's thread, if any)."""
        self.asyncio_loop.close()

    def mode(self, step: Step) -> str:
        """How `step`'s `async def` user code runs: "trio" or "asyncio"."""
        return step.handlers or self.handlers

    @property
    def in_flight(self) -> int:
        return sum(self.running.values())

    def logger(self, step: str | None, trace_id: str, message: MessageInfo | None = None) -> Logger:
        if message is None:
            return self.hub.logger(step=step, trace_id=trace_id)
        return self.hub.logger(
            step=step, trace_id=trace_id, message_id=message.id, attempt=message.attempt
        )

    def context(
        self,
        step: Step,
        trigger: Trigger,
        trace_id: str,
        *,
        message: MessageInfo | None = None,
        data: Any = None,
        request: Request | None = None,
    ) -> Context:
        """`data` is the trigger's input (`ctx.get_data()`); `request`, for HTTP, is what the
        handler and `ctx.match`'s branch get instead."""
        return Context(
            step=step,
            trigger=trigger,
            services=self,
            trace_id=trace_id,
            message=message,
            data=data,
            input=data if request is None else request,
        )

    async def message_status(self, message_id: str) -> MessageStatus | None:
        """`ctx.message_status(id)`: the status of every delivery of a message."""
        check_message_id(message_id)
        if self._messages is None:
            raise RuntimeError("message status needs the runtime's backend")
        return await self._messages.message_status(message_id)

    def state_store(self, trace_id: str) -> StateStore:
        return StateStore(self._state, self._jsonify, trace_id, self._on_state)

    async def call(
        self,
        step: Step,
        trigger: Trigger,
        payload: Any,
        ctx: Context,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call the handler; a `def` handler runs in a worker thread. Raises what the handler
        raised, or HandlerTimeout when `timeout` (seconds) expired."""
        if self._on_run is None and timeout is None:
            # The common call (no observer to tell, no time limit), once per delivery.
            running = self.running
            running[step.name] += 1
            try:
                fn = step.handler
                if (
                    self._async.get(id(fn))
                    and (step.handlers or self.handlers) != "asyncio"
                    and not isinstance(trigger, HttpTrigger)
                ):
                    # `run_user`'s own path for an async handler on this trio loop (known
                    # async from its cache), without its frame and `_invoke`'s. A cron
                    # handler's input is None, or it takes only ctx (as `_invoke` says).
                    try:
                        if not isinstance(trigger, CronTrigger):
                            return await fn(payload, ctx)
                        if self._cron_wants_input(fn):
                            return await fn(None, ctx)
                        return await fn(ctx)
                    except Exception as exc:
                        hint = asyncio_needed(exc)
                        if hint is None:
                            raise
                        raise AsyncioRequired(step.name, hint) from exc
                return await self._invoke(step, trigger, payload, ctx)
            finally:
                running[step.name] -= 1
        self.running[step.name] += 1
        outcome, error = "error", None
        failure: BaseException | None = None
        # Timing, run ids and the HandlerRun record only exist for observers (telemetry,
        # tests); without any, a call costs none of them.
        observed = self._on_run is not None
        started = t0 = 0.0
        run_id, token = "", None
        if observed:
            started = self.clock.now()
            t0 = self._trio_now()
            run_id = random_id()  # a span id: nothing indexes it, so no clock read
            token = CURRENT_RUN.set(run_id)
        try:
            if timeout is None:
                result = await self._invoke(step, trigger, payload, ctx)
            else:
                result = await self._invoke_within(timeout, step, trigger, payload, ctx)
            outcome = "ok"
            return result
        except HandlerTimeout as exc:
            outcome, error, failure = "timeout", f"timed out after {exc.seconds:g} s", exc
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            failure = exc
            raise
        finally:
            self.running[step.name] -= 1
            if token is not None:
                CURRENT_RUN.reset(token)
            if observed:
                message = ctx.message
                run = HandlerRun(  # positionally: step, trigger, trace_id, message_id, ...
                    step.name,
                    trigger.type,
                    ctx.trace_id,
                    message.id if message else None,
                    message.attempt if message else None,
                    started,
                    self._trio_now() - t0,  # duration
                    outcome,
                    error,
                    run_id,
                    message.topic if message else None,
                    format_failure(failure) if failure is not None else None,  # traceback
                )
                assert self._on_run is not None
                self._on_run(run)
            # The failure's traceback holds this frame, whose local would hold the failure: a
            # reference cycle that keeps every frame of the run (the payload, the request,
            # the connection's objects) alive until the garbage collector's next pass.
            failure = None

    async def _invoke_within(
        self, timeout: float, step: Step, trigger: Trigger, payload: Any, ctx: Context
    ) -> Any:
        """`_invoke` under the step's time limit. Past it, HandlerTimeout, carrying the
        handler's frames at the moment time ran out (where it was stuck), not trio's."""
        stuck: BaseException | None = None
        with trio.move_on_after(timeout):
            try:
                return await self._invoke(step, trigger, payload, ctx)
            except BaseException as exc:
                # A Cancelled (or a group of them, from the handler's own nursery) is this
                # scope's own when the scope catches it; an outer cancel passes it by.
                if isinstance(exc, trio.Cancelled) or (
                    isinstance(exc, BaseExceptionGroup) and exc.split(trio.Cancelled)[1] is None
                ):
                    stuck = exc
                raise
        timed_out = HandlerTimeout(step.name, timeout)
        for note in _notes(stuck):  # an asyncio handler's own frames
            timed_out.add_note(note)
        where = stuck.__traceback__ if stuck is not None else None
        # The raise adds this frame to the traceback: it may hold none of them.
        stuck = None
        try:
            raise timed_out.with_traceback(where)
        finally:
            del timed_out, where

    def _invoke(self, step: Step, trigger: Trigger, payload: Any, ctx: Context) -> Awaitable[Any]:
        """The handler call to await. Not a coroutine itself: the caller awaits the call
        directly, one frame fewer per delivery."""
        fn = step.handler
        if isinstance(trigger, CronTrigger):
            # As in Motia, a cron handler's input is None; the tick is on ctx (`ctx.tick`).
            lead: tuple[Any, ...] = (None,) if self._cron_wants_input(fn) else ()
        else:
            lead = (payload,)
        if isinstance(trigger, HttpTrigger) and trigger.middleware:
            return self._through_middleware(step, trigger, payload, ctx)
        return self.run_user(step, fn, lead, ctx)

    async def run_user(
        self,
        step: Step,
        fn: Callable[..., Any],
        lead: tuple[Any, ...],
        ctx: Context | None,
    ) -> Any:
        """Call user code (a handler, a condition) of `step` as `fn(*lead, ctx)` (`ctx` None:
        `fn(*lead)`), the way its step runs user code: an `async def` in this trio task, or on
        the asyncio loop when the step's mode is "asyncio"; a `def` in a worker thread, with
        the blocking context."""
        is_async = self._async.get(id(fn))
        if is_async is None:
            is_async = self._is_async(fn)
        if is_async:
            if (step.handlers or self.handlers) == "asyncio":  # self.mode(step), inline
                return await self.asyncio_loop.run(fn, lead, ctx)
            try:
                return await (fn(*lead) if ctx is None else fn(*lead, ctx))
            except Exception as exc:
                hint = asyncio_needed(exc)
                if hint is None:
                    raise
                raise AsyncioRequired(step.name, hint) from exc
        sync_ctx = None if ctx is None else SyncContext(ctx)

        def run_sync() -> Any:
            return fn(*lead) if sync_ctx is None else fn(*lead, sync_ctx)

        if autojumping():
            result = await _in_thread_kept_busy(run_sync)
        else:
            result = await trio.to_thread.run_sync(run_sync, abandon_on_cancel=True)
        if inspect.isawaitable(result):  # a def that returned a coroutine
            result = await result
        return result

    async def wanted(self, step: Step, trigger: Trigger, payload: Any, ctx: Context) -> bool:
        """Whether the trigger's `condition` (Motia's `condition(input)` or
        `condition(input, ctx)`, sync or async) wants this input; True without one. User code:
        an `async def` one runs as the step's handlers do (on asyncio for an asyncio step), a
        `def` one inline; it raises what it raises. A cron condition gets None, as its
        handler does."""
        condition = getattr(trigger, "condition", None)
        if condition is None:
            return True
        key = id(condition)
        wants_ctx = self._wants_ctx.get(key)
        if wants_ctx is None:
            wants_ctx = self._wants_ctx[key] = condition_wants_ctx(condition)
        value = None if isinstance(trigger, CronTrigger) else payload
        given = ctx if wants_ctx else None
        if self._is_async(condition):
            return bool(await self.run_user(step, condition, (value,), given))
        # A `def` condition is a predicate: called inline (no worker thread), with the
        # trio-side ctx; one that returns an awaitable has it awaited here.
        result = condition(value) if given is None else condition(value, given)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def _through_middleware(
        self, step: Step, trigger: HttpTrigger, request: Any, ctx: Context
    ) -> Any:
        """Motia's middleware chain, outermost first: each is called as `mw(req, ctx, next)`
        and returns a response, its own (the handler never runs) or `await next()`'s. With
        an `async def` handler of an asyncio step the whole chain runs on the asyncio loop."""
        chain, fn = trigger.middleware, step.handler
        asyncio_mode = self.mode(step) == "asyncio" and self._is_async(fn)

        async def handle(req: Any, c: Any) -> Any:
            if asyncio_mode:
                return await fn(req, c)
            return await self.run_user(step, fn, (req,), ctx)

        async def composed(req: Any, c: Any) -> Any:
            return await _through(chain, 0, req, c, handle)

        if asyncio_mode:
            return await self.asyncio_loop.run(composed, (request,), ctx)
        try:
            return await composed(request, ctx)
        except AsyncioRequired:
            raise
        except Exception as exc:  # a middleware that awaits asyncio code
            hint = asyncio_needed(exc)
            if hint is None:
                raise
            raise AsyncioRequired(step.name, hint) from exc

    def _is_async(self, fn: Callable[..., Any]) -> bool:
        key = id(fn)
        known = self._async.get(key)
        if known is None:
            known = self._async[key] = inspect.iscoroutinefunction(fn) or (
                inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
            )
        return known

    def _cron_wants_input(self, fn: Callable[..., Any]) -> bool:
        key = id(fn)
        wants = self._arity.get(key)
        if wants is None:
            wants = self._arity[key] = cron_wants_input(fn)
        return wants


async def _in_thread_kept_busy(fn: Callable[[], Any]) -> Any:
    """`fn()` in a worker thread, trio kept busy meanwhile (see `busy_while`): under an
    autojumping MockClock a quick `def` handler then finishes before virtual time jumps to
    its timeout, as an `async def` one does."""
    finished = threading.Event()

    def tracked() -> Any:
        try:
            return fn()
        finally:
            finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(busy_while, finished, MOCK_CLOCK_GRACE, 0.05)
        result = await trio.to_thread.run_sync(tracked, abandon_on_cancel=True)
        nursery.cancel_scope.cancel()
    return result


def _notes(exc: BaseException | None) -> list[str]:
    """The notes on `exc` and, in a group, on its members."""
    if exc is None:
        return []
    notes = list(getattr(exc, "__notes__", ()))
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            notes += _notes(inner)
    return notes


async def _through(
    chain: Sequence[Callable[..., Any]],
    i: int,
    req: Any,
    ctx: Any,
    handle: Callable[[Any, Any], Awaitable[Any]],
) -> Any:
    """`chain[i:]` around `handle`: each middleware gets `next`, which runs the rest. A
    function of its own, not a closure that names itself: that closure would be a reference
    cycle per request, holding the request (and its body) until the collector's next pass."""
    if i == len(chain):
        return await handle(req, ctx)
    result = chain[i](req, ctx, lambda: _through(chain, i + 1, req, ctx, handle))
    if inspect.isawaitable(result):
        result = await result
    return result
