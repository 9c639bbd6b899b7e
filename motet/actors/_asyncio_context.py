"""`ctx` as an `async def` handler on the runtime's asyncio loop sees it (`AsyncioContext`):
the `Context` API, each call that reaches the runtime hopping to trio and back (see
`motet.actors._asyncio` for the bridge). Log lines are made in the loop's thread (so a value
mutated after the call is logged as it was) and handed to trio in call order, fire and forget:
a log call never blocks the loop.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from .._context import Context, call_branch
from .._logging import Logger, jsonable, report_lost_line

if TYPE_CHECKING:
    import asyncio  # annotations only; the loop's module imports it when it starts one

Hop = Callable[..., "asyncio.Future[Any]"]  # (trio async fn, *args) -> a future on the loop
_LEVELS = frozenset({"debug", "info", "warn", "warning", "error"})


class AsyncioContext:
    """`ctx` as an asyncio handler sees it: the same API as `Context`, each call that reaches
    the runtime hopping to trio and back (awaited as asyncio futures)."""

    __slots__ = ("_ctx", "_hop", "_logger", "_state", "_token", "message", "step", "trace_id")

    def __init__(self, ctx: Context, hop: Hop, token: trio.lowlevel.TrioToken) -> None:
        self._ctx = ctx
        self._hop = hop
        self._token = token
        self.step = ctx.step
        self.trace_id = ctx.trace_id
        self.message = ctx.message
        self._logger: _LoopLogger | None = None  # made on first use, as Context's are
        self._state: _LoopState | None = None

    @property
    def logger(self) -> _LoopLogger:
        if self._logger is None:
            self._logger = _LoopLogger(self._ctx.logger, self._token)
        return self._logger

    @property
    def state(self) -> _LoopState:
        if self._state is None:
            self._state = _LoopState(self._ctx.state, self._hop)
        return self._state

    @property
    def trigger(self) -> Any:
        return self._ctx.trigger

    @property
    def tick(self) -> Any:
        return self._ctx.tick

    def emit(self, topic: Any, data: Any = None, **kwargs: Any) -> asyncio.Future[str]:
        emit = _with_kwargs(self._ctx.emit, kwargs) if kwargs else self._ctx.emit
        return self._hop(emit, topic, data)

    enqueue = emit

    def now(self) -> Any:
        return trio.from_thread.run_sync(self._ctx.now, trio_token=self._token)

    def get_data(self) -> Any:
        return self._ctx.get_data()

    getData = get_data

    async def match(self, branches: Mapping[str, Callable[..., Any]]) -> Any:
        branch = branches.get(self._ctx.trigger.type)
        if branch is None:
            return None
        result = call_branch(branch, self._ctx._input, self.step.name, self._ctx.trigger.type)
        if inspect.isawaitable(result):
            result = await result
        return result

    def __getattr__(self, name: str) -> Any:
        # What `Context` has beyond the above (ctx.streams, ...) reads through a proxy whose
        # async methods hop to trio like ctx.state's.
        return loop_side(getattr(self._ctx, name), self._hop)


_PLAIN = (str, bytes, int, float, bool, type(None), tuple, frozenset)


def loop_side(value: Any, hop: Hop) -> Any:
    """`value` as asyncio code may use it: an async function becomes one returning an
    asyncio future (run on trio), an object is wrapped so its own async methods do the same;
    plain values and sync functions are returned as they are."""
    if isinstance(value, (*_PLAIN, dict, list, type)):
        return value
    if inspect.iscoroutinefunction(value):

        def call(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            return hop(_with_kwargs(value, kwargs) if kwargs else value, *args)

        return call
    if inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value):
        return value
    return _LoopProxy(value, hop)


class _LoopProxy:
    __slots__ = ("_hop", "_target")

    def __init__(self, target: Any, hop: Hop) -> None:
        self._target = target
        self._hop = hop

    def __getattr__(self, name: str) -> Any:
        return loop_side(getattr(self._target, name), self._hop)

    def __getitem__(self, key: Any) -> Any:
        return loop_side(self._target[key], self._hop)

    def __repr__(self) -> str:
        return f"<asyncio-side {self._target!r}>"


def _with_kwargs(fn: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
    async def call(*args: Any) -> Any:
        return await fn(*args, **kwargs)

    return call


class _LoopState:
    __slots__ = ("_hop", "_store")

    def __init__(self, store: Any, hop: Hop) -> None:
        self._store = store
        self._hop = hop

    def __getattr__(self, name: str) -> Callable[..., asyncio.Future[Any]]:
        method = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            return self._hop(_with_kwargs(method, kwargs) if kwargs else method, *args)

        return call


class _LoopLogger:
    """`ctx.logger` in the loop's thread: values are turned into JSON here, the record is made
    in trio's thread, in call order, without waiting for it."""

    __slots__ = ("_logger", "_token")

    def __init__(self, logger: Logger, token: trio.lowlevel.TrioToken) -> None:
        self._logger = logger
        self._token = token

    def bind(self, **bound: Any) -> _LoopLogger:
        return _LoopLogger(self._logger.bind(**bound), self._token)

    def __getattr__(self, level: str) -> Callable[..., None]:
        if level not in _LEVELS:
            raise AttributeError(f"ctx.logger has no attribute {level!r}")
        method = getattr(self._logger, level)

        def log(message: Any = "", *args: Any, **fields: Any) -> None:
            try:
                if fields.get("exc_info") is True:
                    fields["exc_info"] = sys.exc_info()[1]
                exc_info = fields.pop("exc_info", None)
                frozen = {k: jsonable(v) for k, v in fields.items()}
                extra = tuple(jsonable(a) for a in args)

                def deliver() -> None:  # in trio's thread, where nothing may raise
                    try:
                        method(message, *extra, exc_info=exc_info, **frozen)
                    except Exception as exc:  # a wrong call, like (msg, a, b)
                        report_lost_line(message, exc)

                self._token.run_sync_soon(deliver)
            except Exception as exc:  # the runtime is gone: never fail the handler
                report_lost_line(message, exc)

        return log
