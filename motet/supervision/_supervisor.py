"""The supervisor: starts children, restarts them by OTP's rules, stops them in order.

Everything that changes the set of children happens in the supervisor's own task,
one thing at a time, as in OTP where the supervisor is a process answering calls:
child exits and `start_child` / `terminate_child` calls arrive on one inbox and are
handled in arrival order. Invariant between two inbox items: every child in
`_children` is running, in start order, and every running child is in `_children`.

Failures are `Exception`s only. `trio.Cancelled` and other `BaseException`s are
never caught: cancelling the supervisor stops its children (reverse start order,
each within its deadline) and then lets the cancellation through.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs
import trio

from motet._errors import SupervisorGaveUp

from ._child import ChildTaskStatus, Incarnation
from ._event import ChildStatus, EventKind, SupervisorEvent
from ._spec import ChildSpec, RestartWindow, SupervisorOptions


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    restarts: int = 0
    current: Incarnation | None = None


@attrs.define(eq=False)
class _Call:
    """A `start_child` (spec set) or `terminate_child` (child_id set) request."""

    spec: ChildSpec | None = None
    child_id: str | None = None
    done: trio.Event = attrs.field(factory=trio.Event)
    result: Any = None
    error: Exception | None = None
    abandoned: bool = False


def _should_restart(spec: ChildSpec, error: Exception | None) -> bool:
    if spec.restart == "permanent":
        return True
    if spec.restart == "transient":
        return error is not None
    return False


class Supervisor:
    """An OTP-style supervisor for trio tasks. Run it with `nursery.start(sup.run)`."""

    def __init__(
        self, children: Iterable[ChildSpec] = (), options: SupervisorOptions | None = None
    ) -> None:
        specs = tuple(children)
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"Supervisor children must be ChildSpec, got {spec!r}")
        ids = [spec.id for spec in specs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"Supervisor child ids must be unique, got duplicates {duplicates}")
        self._specs = specs
        self._options = options if options is not None else SupervisorOptions()
        self._children: list[_Child] = []
        self._running = False
        self._accepting = False
        self._nursery: trio.Nursery | None = None
        self._inbox: trio.MemorySendChannel[Incarnation | _Call] | None = None
        self._window = RestartWindow(self._options.period)

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} children={[c.spec.id for c in self._children]}>"

    @property
    def name(self) -> str:
        return self._options.name

    @property
    def options(self) -> SupervisorOptions:
        return self._options

    def which_children(self) -> tuple[ChildStatus, ...]:
        """The current children, in start order."""
        return tuple(
            ChildStatus(id=c.spec.id, running=c.current is not None, restarts=c.restarts)
            for c in self._children
        )

    async def start_child(self, spec: ChildSpec) -> Any:
        """Start `spec` as the last child; return what it passed to `task_status.started`.

        If it fails to start, its error is raised here and it is not added.
        Raises ValueError if the id is taken, trio.ClosedResourceError if the
        supervisor is not running.
        """
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child expects a ChildSpec, got {spec!r}")
        return await self._call(_Call(spec=spec))

    async def terminate_child(self, child_id: str) -> None:
        """Stop the child `child_id` (within its shutdown deadline) and forget it.

        Raises KeyError for an unknown id, trio.ClosedResourceError if the
        supervisor is not running.
        """
        await self._call(_Call(child_id=child_id))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, report ready, then supervise until cancelled.

        A child that fails to start fails `run` with that error (after stopping the
        children already started). Exceeding the restart intensity raises
        `SupervisorGaveUp` chained to the last failure. A supervisor can be run again
        once a run has ended (as when its own parent restarts it): it starts afresh
        from the children it was constructed with.
        """
        if self._running:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        self._running = True
        self._children = [_Child(spec) for spec in self._specs]
        send, receive = trio.open_memory_channel[Incarnation | _Call](math.inf)
        # Unbounded on purpose, and still bounded in practice: it holds at most one
        # exit per running child plus one request per waiting caller.
        self._inbox = send
        self._window = RestartWindow(self._options.period)
        failure: Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    failure = await self._start_initial()
                    if failure is None:
                        self._accepting = True
                        task_status.started()
                        failure = await self._supervise(receive)
                finally:
                    self._accepting = False
                    with trio.CancelScope(shield=True):
                        await self._stop_all()
        finally:
            self._running = False
            self._nursery = None
            self._inbox = None
            self._fail_pending(receive)
        if isinstance(failure, SupervisorGaveUp):
            # Raised outside the nursery so the parent gets it bare, not in a group.
            raise failure from failure.__cause__
        if failure is not None:
            raise failure

    # -- the supervisor's own task -------------------------------------------------

    async def _start_initial(self) -> Exception | None:
        for child in self._children:
            try:
                await self._start(child)
            except Exception as exc:
                exc.add_note(f"while starting child {child.spec.id!r} of supervisor {self.name!r}")
                self._children.remove(child)
                return exc
            self._emit("started", child)
        return None

    async def _supervise(
        self, inbox: trio.MemoryReceiveChannel[Incarnation | _Call]
    ) -> SupervisorGaveUp | None:
        # We hold the send side, so this loop ends only by cancellation or give-up.
        async for item in inbox:
            if isinstance(item, _Call):
                await self._answer(item)
                continue
            gave_up = await self._exited(item)
            if gave_up is not None:
                return gave_up
        raise AssertionError("unreachable: the supervisor inbox never closes while running")

    async def _exited(self, run: Incarnation) -> SupervisorGaveUp | None:
        """A child's run has ended: report it, then restart the child or drop it."""
        child = self._find(run.spec.id)
        if child is None or child.current is not run or run.stopping:
            return None  # an exit we caused, or of a run already replaced
        child.current = None
        error = _take_error(run)
        self._emit("exited", child, error)
        if not _should_restart(child.spec, error):
            self._children.remove(child)
            return None
        return await self._restart(child, error)

    async def _restart(self, failed: _Child, error: Exception | None) -> SupervisorGaveUp | None:
        options = self._options
        window = self._window
        while True:
            nth = window.record(trio.current_time())
            if nth > options.intensity:
                self._emit("gave_up", failed, error)
                gave_up = SupervisorGaveUp(
                    self.name, failed.spec.id, options.intensity, options.period
                )
                gave_up.__cause__ = error
                return gave_up
            await self._stop_siblings(failed)
            delay = options.restart_backoff.delay(nth)
            if delay > 0:
                await trio.sleep(delay)
            start_failure = await self._start_stopped()
            if start_failure is None:
                return None
            failed, error = start_failure
            self._emit("exited", failed, error)

    async def _stop_siblings(self, failed: _Child) -> None:
        strategy = self._options.strategy
        if strategy == "one_for_one":
            return
        if strategy == "one_for_all":
            affected = [c for c in self._children if c is not failed]
        else:
            affected = self._children[self._children.index(failed) + 1 :]
        for child in reversed(affected):
            if child.current is not None:
                await self._stop(child)
            if child.spec.restart == "temporary":
                self._children.remove(child)

    async def _start_stopped(self) -> tuple[_Child, Exception] | None:
        for child in list(self._children):
            if child.current is not None:
                continue
            try:
                await self._start(child)
            except Exception as exc:
                return child, exc
            child.restarts += 1
            self._emit("restarted", child)
        return None

    async def _answer(self, call: _Call) -> None:
        if call.abandoned:
            return
        child: _Child | None = None
        answered = False
        try:
            if call.spec is not None:
                child = await self._add_child(call.spec, call)
            else:
                await self._remove_child(call.child_id)
            answered = True
        except Exception as exc:
            call.error = exc
            answered = True
        finally:
            if not answered:  # we are being cancelled mid-call
                call.error = trio.ClosedResourceError(
                    f"supervisor {self.name!r} stopped before answering"
                )
            call.done.set()
        # Emitted after answering so an observer's error fails the supervisor,
        # not the caller.
        if child is not None:
            self._emit("started", child)

    async def _add_child(self, spec: ChildSpec, call: _Call) -> _Child:
        if self._find(spec.id) is not None:
            raise ValueError(f"supervisor {self.name!r} already has a child with id {spec.id!r}")
        child = _Child(spec)
        self._children.append(child)
        try:
            call.result = await self._start(child)
        except BaseException:
            self._children.remove(child)
            raise
        return child

    async def _remove_child(self, child_id: str | None) -> None:
        child = self._find(child_id)
        if child is None:
            known = [c.spec.id for c in self._children]
            raise KeyError(
                f"supervisor {self.name!r} has no child {child_id!r} (children: {known})"
            )
        if child.current is not None:
            await self._stop(child)
        self._children.remove(child)

    async def _start(self, child: _Child) -> Any:
        assert self._nursery is not None
        run = Incarnation(child.spec)
        child.current = run
        try:
            return await self._nursery.start(self._run_child, run)
        except BaseException:
            child.current = None
            raise

    async def _stop(self, child: _Child) -> None:
        """Stop one child: ask (if it traps shutdown), cancel at its deadline, wait."""
        run = child.current
        assert run is not None
        run.stopping = True
        if not run.done.is_set():
            status = run.status
            if status is not None and status.traps_shutdown and run.spec.shutdown > 0:
                status.request_shutdown()
                run.scope.deadline = min(
                    run.scope.deadline, trio.current_time() + run.spec.shutdown
                )
            else:
                run.scope.cancel()
            await run.done.wait()
        child.current = None
        self._emit("stopped", child, _take_error(run))

    async def _stop_all(self) -> None:
        try:
            for child in reversed(self._children):
                if child.current is not None:
                    await self._stop(child)
        finally:
            # Whatever went wrong above (an observer raising), nothing may outlive us.
            for child in self._children:
                if child.current is not None:
                    child.current.scope.cancel()

    # -- the child's task ----------------------------------------------------------

    async def _run_child(self, run: Incarnation, *, task_status: trio.TaskStatus[Any]) -> None:
        run.task = trio.lowlevel.current_task()
        status = run.status = ChildTaskStatus(task_status, run)
        try:
            with run.scope:
                try:
                    await run.spec.start(task_status=status)
                except Exception as exc:
                    if not status.ready:
                        raise  # nursery.start re-raises it to whoever started us
                    run.error = exc
                except BaseExceptionGroup as group:
                    # It failed while being cancelled (as when its supervisor stops it and a
                    # task of it meets an error first): the failure is its exit reason, as
                    # for any ready child, and only the cancellation goes on, to the scope.
                    failures, cancellation = group.split(Exception)
                    try:
                        if not status.ready or failures is None:
                            raise
                        run.error = failures
                        if cancellation is not None:
                            raise cancellation from None
                    finally:
                        # Their tracebacks hold this frame: kept here, they would be a cycle.
                        del failures, cancellation
        finally:
            run.done.set()
        if status.ready and self._inbox is not None:
            self._inbox.send_nowait(run)

    # -- helpers -------------------------------------------------------------------

    async def _call(self, call: _Call) -> Any:
        if not self._accepting or self._inbox is None:
            raise trio.ClosedResourceError(f"supervisor {self.name!r} is not running")
        self._inbox.send_nowait(call)
        try:
            await call.done.wait()
        except BaseException:
            call.abandoned = True
            raise
        # Taken off the call, and out of this frame as it is raised: the error's traceback
        # holds the frames that hold the call, so either would be a reference cycle.
        error, call.error = call.error, None
        if error is None:
            return call.result
        try:
            raise error
        finally:
            del error

    def _fail_pending(self, inbox: trio.MemoryReceiveChannel[Incarnation | _Call]) -> None:
        while True:
            try:
                item = inbox.receive_nowait()
            except trio.WouldBlock:
                break
            if isinstance(item, _Call) and not item.done.is_set():
                item.error = trio.ClosedResourceError(
                    f"supervisor {self.name!r} stopped before answering"
                )
                item.done.set()
        inbox.close()

    def _find(self, child_id: str | None) -> _Child | None:
        for child in self._children:
            if child.spec.id == child_id:
                return child
        return None

    def _emit(self, kind: EventKind, child: _Child, error: BaseException | None = None) -> None:
        hook = self._options.on_event
        if hook is not None:
            hook(
                SupervisorEvent(
                    kind=kind,
                    supervisor=self.name,
                    child=child.spec.id,
                    time=trio.current_time(),
                    restarts=child.restarts,
                    error=error,
                )
            )


def _take_error(run: Incarnation) -> Exception | None:
    """The run's exit reason, taken off the run: its traceback holds the frame of the run's
    task, which holds the run, so a run that kept it would be a reference cycle. Under
    `motet start`, which freezes start-up's objects out of the collector's reach, the first
    run of every child is frozen: each crash would keep its error, traceback and frames (the
    messages the actor held among them) for the life of the process."""
    error, run.error = run.error, None
    return error
