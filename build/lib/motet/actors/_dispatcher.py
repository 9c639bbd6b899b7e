"""Runs handlers: builds each call's context and calls the handler the way its step wants.

Shared by the step actors (queue, cron and state deliveries) and, through the gateway's
`RuntimeInvoker` adapter, by HTTP requests, so a handler is called the same way whatever
triggered it. Nothing here knows HTTP beyond the handler's `Request` record.
"""

from __future__ import annotations

import contextvars
import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import trio

from .._clock import Clock
from .._context import Context, Emitter, MessageInfo, SyncContext
from .._envelope import new_id
from .._errors import HandlerTimeout
from .._logging import Logger, LogHub
from .._traceback import format_failure
from ..backends._protocol import StateBackend, StateChange
from ..state._store import Jsonify, StateStore
from ..steps._handlers import cron_wants_input
from ..steps._http import Request
from ..steps._model import CronTrigger, Step, Trigger


@attrs.frozen
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
    ) -> None:
        self.emitter = emitter
        self._state = state
        self._jsonify = jsonify
        self.hub = hub
        self.clock = clock
        self.running: Counter[str] = Counter()  # step name -> handlers running now
        # The runtime's observers (`motet.Observer`); None when none watches.
        self._on_run = on_run
        self._on_state = on_state
        self._arity: dict[int, bool] = {}  # id(handler) -> a cron handler takes (input, ctx)
        self._async: dict[int, bool] = {}  # id(handler) -> is a coroutine function

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
            t0 = trio.current_time()
            run_id = new_id()
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
                run = HandlerRun(
                    step=step.name,
                    trigger=trigger.type,
                    trace_id=ctx.trace_id,
                    message_id=message.id if message else None,
                    attempt=message.attempt if message else None,
                    started=started,
                    duration=trio.current_time() - t0,
                    outcome=outcome,
                    error=error,
                    run_id=run_id,
                    topic=message.topic if message else None,
                    traceback=format_failure(failure) if failure is not None else None,
                )
                assert self._on_run is not None
                self._on_run(run)

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
        where = stuck.__traceback__ if stuck is not None else None
        raise HandlerTimeout(step.name, timeout).with_traceback(where)

    async def _invoke(self, step: Step, trigger: Trigger, payload: Any, ctx: Context) -> Any:
        fn = step.handler
        wants_input = not isinstance(trigger, CronTrigger) or self._cron_wants_input(fn)
        if self._is_async(fn):
            return await (fn(payload, ctx) if wants_input else fn(ctx))
        sync_ctx = SyncContext(ctx)

        def run_sync() -> Any:
            return fn(payload, sync_ctx) if wants_input else fn(sync_ctx)

        result = await trio.to_thread.run_sync(run_sync, abandon_on_cancel=True)
        if inspect.isawaitable(result):  # a def that returned a coroutine
            result = await result
        return result

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
