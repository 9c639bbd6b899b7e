"""`async def` handlers that await asyncio code (Motia Python runs on asyncio): one asyncio
event loop per runtime, in a thread of its own; each such handler call runs as an asyncio task
on it, and its `ctx` calls hop back to trio.

    trio (the dispatcher's task)                    the loop's thread
    ────────────────────────────                    ─────────────────
    run(fn, lead, ctx) ── call_soon_threadsafe ───> task = fn(*lead, AsyncioContext)
      waits on a trio.Event                           │ await ctx.emit(...) / ctx.state.get(...)
      call nursery <── run_sync_soon(start_soon) ─────┘   an asyncio future, resolved by
      the trio call runs ── call_soon_threadsafe(set_result) ──> the task resumes
      <── run_sync_soon(done.set) ─────────────────── the task ends

- The ctx calls of one handler call run as trio tasks in a nursery that lives as long as
  the call, so they see the runtime's trio context (backends, emit durability) and end with it.
- Cancelling the trio side (the step's `timeout`, a shutdown) cancels the asyncio task and
  waits, up to CANCEL_GRACE real seconds, for it to finish unwinding.
- Log lines are made in the loop's thread (so a value mutated after the call is logged as it
  was) and handed to trio in call order, fire and forget: a log call never blocks the loop.

Why a thread and not trio-asyncio: no dependency and no rule on import order (trio-asyncio
pulls in greenlet, must wrap the whole runtime in its loop, and wants to be imported before
asyncio libraries). It costs more per call: two thread wake-ups, 0.13-0.22 ms of CPU against
trio-asyncio's 37 us in `bench/asyncio_handler.py`, paid only by steps that run on asyncio.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    # Imported where a loop is started, not here: asyncio (1.5 MiB resident) stays out of
    # processes whose steps never run on it.
    import asyncio

CANCEL_GRACE = 5.0  # real s: how long a cancelled asyncio handler may take to unwind
# real s: under an autojumping MockClock (tests), how long asyncio work runs before virtual
# time may move on (see `busy_while`)
MOCK_CLOCK_GRACE = 1.0
_STOP_WAIT = 5.0  # real s: joining the loop's thread when the runtime stops


# What asyncio code fails with when awaited under trio (CPython 3.11+), by exception type.
_ASYNCIO_SIGNS: tuple[tuple[type[BaseException], str], ...] = (
    (RuntimeError, "no running event loop"),  # asyncio.sleep, get_running_loop(), aiohttp...
    (RuntimeError, "There is no current event loop"),  # get_event_loop() off the main thread
    (TypeError, "written for some other framework like asyncio"),  # trio, given a Future
    (AttributeError, "object has no attribute 'create_future'"),  # asyncio.Event().wait()
)


def asyncio_needed(exc: BaseException) -> str | None:
    """When `exc` (or an error it was raised from, or grouped with) is what asyncio code
    raises under trio, that error as `Type: message`; else None."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        for kind, sign in _ASYNCIO_SIGNS:
            if isinstance(err, kind) and sign in str(err):
                return f"{type(err).__name__}: {err}"
        if isinstance(err, BaseExceptionGroup):
            todo.extend(err.exceptions)
        todo.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    return None


class AsyncioLoop:
    """The runtime's asyncio loop, started in its own thread at its first use; `close()`
    stops it (the runtime calls it when it stops)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None:
                return self._loop
            import asyncio

            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    _cancel_all(loop)
                    loop.close()

            thread = threading.Thread(target=serve, name="motet-asyncio", daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread
            return loop

    def close(self) -> None:
        """Stop the loop: tasks still on it are cancelled, then the thread ends."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # already closed
            return
        thread.join(_STOP_WAIT)

    async def run(self, fn: Callable[..., Awaitable[Any]], lead: tuple[Any, ...], ctx: Any) -> Any:
        """`await fn(*lead, ctx)` on the loop, `ctx` (a `Context`, or None to leave it out)
        seen from there as an `AsyncioContext`. Returns what it returned; raises what it
        raised."""
        import asyncio  # loaded by `_ensure`

        # Here, not at the top: a project with no asyncio handler never loads it.
        from ._asyncio_context import AsyncioContext

        loop = self._ensure()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        finished = threading.Event()
        box: dict[str, Any] = {}

        async with trio.open_nursery() as nursery:

            def hop(afn: Callable[..., Awaitable[Any]], *args: Any) -> asyncio.Future[Any]:
                # In the loop's thread: run `afn(*args)` as a trio task of this call.
                future: asyncio.Future[Any] = loop.create_future()

                def start() -> None:
                    try:
                        nursery.start_soon(_serve, loop, afn, args, future)
                    except RuntimeError:  # the call is over: the nursery takes no more
                        loop.call_soon_threadsafe(_settle, future, _ended(), None)

                try:
                    token.run_sync_soon(start)
                except trio.RunFinishedError:
                    future.set_exception(_ended())
                return future

            def on_done(_: Any) -> None:
                # Wake trio first: once `finished` reads set, trio's wake-up is already
                # queued, so an autojumping MockClock never sees trio idle in between.
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(done.set)
                finished.set()

            def start_task() -> None:
                try:
                    args = lead if ctx is None else (*lead, AsyncioContext(ctx, hop, token))
                    task = loop.create_task(_awaited(fn(*args)))
                except BaseException as exc:  # fn(...) itself raised before being awaited
                    box["error"] = exc
                    on_done(None)
                    return
                box["task"] = task
                task.add_done_callback(on_done)

            loop.call_soon_threadsafe(start_task)
            try:
                if autojumping():
                    await busy_while(finished, MOCK_CLOCK_GRACE)
                await done.wait()
            except trio.Cancelled as cancelled:
                loop.call_soon_threadsafe(_cancel, box)
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(finished.wait, CANCEL_GRACE)
                where = box.get("where")
                if where:  # a timeout's report shows where the asyncio handler was stuck
                    cancelled.add_note("the asyncio handler was at:\n" + where)
                raise
            finally:
                nursery.cancel_scope.cancel()
        # A raised exception's traceback holds this frame (and `start_task`'s, which sees
        # `box`): neither may keep the task or the error, or each failure is a reference
        # cycle that holds the handler's frames until the collector's next pass.
        if "error" in box:
            raise box.pop("error")
        task: asyncio.Task[Any] = box.pop("task")
        try:
            return task.result()
        except asyncio.CancelledError as exc:  # the handler cancelled itself
            raise RuntimeError("the asyncio handler was cancelled from inside") from exc
        finally:
            del task


def autojumping() -> bool:
    # Read without importing trio.testing (which imports pytest when it is installed).
    threshold = getattr(trio.lowlevel.current_clock(), "autojump_threshold", math.inf)
    return bool(threshold != math.inf)


async def busy_while(finished: threading.Event, seconds: float, linger: float = 0.0) -> None:
    """Keep trio busy (never idle) while the asyncio side works, for up to `seconds` of real
    time. Under an autojumping MockClock an idle trio jumps virtual time to its next
    deadline (a step or gateway timeout) while asyncio still works on real time; kept busy,
    quick asyncio handlers finish within virtual time standing still, and a stuck one
    still meets its (virtual) timeout once `seconds` have passed."""
    until = time.monotonic() + seconds
    while not finished.is_set() and time.monotonic() < until:
        finished.wait(0.0005)  # blocks trio's thread briefly: no spinning at full speed
        await trio.lowlevel.checkpoint()
    # `linger`: the caller cancels this once the answer has reached trio (a worker thread's
    # result arrives a moment after its function returned).
    until = time.monotonic() + linger
    while time.monotonic() < until:
        await trio.lowlevel.checkpoint()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _serve(
    loop: asyncio.AbstractEventLoop,
    afn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    future: asyncio.Future[Any],
) -> None:
    try:
        result = await afn(*args)
    except Exception as exc:
        _threadsafe(loop, _settle, future, exc, None)
    except BaseException:  # trio.Cancelled: the handler call is ending
        _threadsafe(loop, _settle, future, _ended(), None)
        raise
    else:
        _threadsafe(loop, _settle, future, None, result)


def _threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    # A closed loop raises RuntimeError: then nobody waits for the answer any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    if future.done():  # the task waiting for it was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _ended() -> RuntimeError:
    return RuntimeError("the handler call is over: its ctx can no longer be used")


def _cancel(box: dict[str, Any]) -> None:
    task = box.get("task")
    if task is not None:
        box["where"] = _where(task)
        task.cancel()


def _where(task: asyncio.Task[Any]) -> str:
    """The frames of a suspended task's await chain, outermost first (Task.get_stack gives
    only the outermost coroutine's)."""
    frames = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        if frame.f_code is not _awaited.__code__:  # the bridge's own wrapper
            frames.append((frame, frame.f_lineno))
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "".join(traceback.StackSummary.extract(frames).format()).rstrip("\n")


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
