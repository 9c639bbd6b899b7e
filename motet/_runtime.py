"""The runtime: runs a plan (`motet._plan`) over a backend, composed of parts started in
order and stopped in reverse.

    Runtime.run()
    ├── backend         (started first, closed last)
    ├── supervisor      one StepActor per queue / cron / state subscription
    ├── clock actor     cron ticks -> messages on each cron step's own topic
    └── parts           in the order given, e.g. telemetry then the gateway (`Part`)

The runtime composes small runners; it does not parse, route, serve or persist itself.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._clock import Clock, WallClock
from ._envelope import CRON_TOPIC_PREFIX, Subscription, new_id
from ._errors import MotetError, describe
from ._logging import Logger, LogHub, stdlib_sink, stream_sink
from ._observer import Observer, Observers, RuntimeView
from ._plan import plan
from ._status import CancelOutcome, MessageStatus, Records, check_message_id
from ._validators import count, fraction, seconds
from .actors._clock_actor import CronJob, run_cron
from .actors._dispatcher import Dispatcher
from .actors._publisher import Publisher
from .actors._rate_gate import Throttling
from .actors._retry import RetryPolicy
from .actors._step_actor import StepActor, StepWiring
from .backends._protocol import Backend
from .project import ProjectConfig
from .steps import make_converter, to_json, validate
from .steps._discovery import discover_stream_files
from .steps._model import CronTrigger, HttpTrigger, Step
from .supervision import ChildSpec, Supervisor, SupervisorEvent, SupervisorOptions

if TYPE_CHECKING:
    # Imported where a project declares streams: one without them never loads the package.
    from .streams import StreamConfig, StreamService


@attrs.frozen
class RuntimeOptions:
    """How a runtime runs, beyond what steps and the project config say."""

    # fraction; 0 makes retry delays exact
    retry_jitter: float = attrs.field(default=0.1, validator=fraction())
    # s for running handlers to finish on a graceful stop
    shutdown_timeout: float = attrs.field(default=10.0, validator=seconds(allow_zero=True))
    # actor restarts tolerated per period before giving up
    restart_intensity: int = attrs.field(default=5, validator=count(minimum=0))
    restart_period: float = attrs.field(default=10.0, validator=seconds())
    log_sink: bool = True  # write logs to stdout in the project's format
    log_stream: Any = None  # where stdout logs go (default sys.stdout)
    # Also hand every record to stdlib `logging` (logger "motet"), so an embedding
    # service's handlers receive them.
    stdlib_logging: bool = False
    # changes buffered per live stream subscriber (SSE, WebSocket); one that falls further
    # behind is dropped (it reconnects and resumes) so publishers never wait for it
    stream_buffer: int = attrs.field(default=256, validator=count(minimum=1))


class Part(Protocol):
    """A long-lived part above the step actors: the gateway, telemetry.

    The runtime starts its parts in the order given, after the step actors and the clock,
    each with `await nursery.start(part.run, runtime)` in a nursery nested in the previous
    one; `run` reports the URLs it serves (or `[]`). On a graceful stop the runtime awaits
    each part's `drain()` in reverse order (the gateway stops accepting and finishes the
    requests in flight) before running handlers drain; then it cancels the parts, innermost
    first, before the actors."""

    async def run(self, runtime: Runtime, *, task_status: trio.TaskStatus[list[str]]) -> None: ...

    async def drain(self) -> None: ...


class Runtime:
    """Runs a set of steps. Start it with `await nursery.start(runtime.run)`, or use
    `open_runtime(...)`. One runtime per set of steps; nothing is global."""

    def __init__(
        self,
        steps: Sequence[Step],
        *,
        backend: Backend,
        project: ProjectConfig | None = None,
        clock: Clock | None = None,
        options: RuntimeOptions | None = None,
        parts: Sequence[Part] = (),
        observers: Sequence[Observer] = (),
        steps_folder: str | Path | None = None,
        streams: Sequence[StreamConfig] | None = None,
    ) -> None:
        self.steps = list(steps)
        # Where the steps were loaded from, for the start-time check of misnamed step files;
        # by default the project's steps folder when every step file lives in it.
        self.steps_folder = Path(steps_folder) if steps_folder is not None else None
        self.backend = backend
        self.project = project if project is not None else ProjectConfig()
        self.options = options if options is not None else RuntimeOptions()
        self.converter = make_converter()
        self._clock = clock
        self.parts = list(parts)
        self.plan = plan(self.steps, self.project)
        self.subscriptions = list(self.plan.subscriptions)
        # Every event fanned out once; a part that is an Observer (telemetry) observes too.
        self.observer = Observers(
            [*observers, *(part for part in self.parts if isinstance(part, Observer))]
        )
        self.view: RuntimeView = _View(self)
        self._stop = trio.Event()
        self._ready = False
        self.actors: list[StepActor] = []
        self._cron_actors: dict[str, StepActor] = {}  # schedule name -> its actor
        self.hub: LogHub | None = None
        self.publisher: Publisher | None = None
        self.dispatcher: Dispatcher | None = None
        self.supervisor: Supervisor | None = None
        self.gateway_urls: list[str] = []  # what the parts serve, once started
        # Motia's streams: given, or the stream files of the steps folder (`_stream_configs`).
        self.stream_configs = list(streams) if streams is not None else self._stream_configs()
        # Once run() has started, when the project declares streams; else None.
        self.streams: StreamService | None = None

    def _stream_configs(self) -> list[StreamConfig]:
        """The stream files (`*.stream.py`, `*_stream.py`) of the steps folder: `steps_folder`,
        else the project's steps folder when every step was loaded from a file in it."""
        folder = self.steps_folder
        if folder is None:
            root = self.project.steps_dir.resolve()
            files = [s.file for s in self.steps]
            if not files or any(f is None or root not in f.resolve().parents for f in files):
                return []
            folder = root
        stream_files = discover_stream_files(folder)
        if not stream_files:
            return []
        from .streams import load_streams

        return load_streams(folder, stream_files)

    def cron_running(self, name: str) -> bool:
        """Whether a tick of the schedule `name` is held by this process (leased or running):
        then its next tick is skipped (`skip_if_running`)."""
        actor = self._cron_actors.get(name)
        return actor is not None and bool(actor.held)

    def start_warnings(self) -> list[str]:
        """What looks like a typo in the project (`motet.steps._checks`): logged once when
        the runtime starts; `motet steps` prints them, `motet steps --strict` fails on them."""
        from .steps._checks import start_warnings

        return start_warnings(
            self.steps, self.plan.subscriptions, self.steps_folder, self.project.steps_dir
        )

    def start_report(self) -> list[str]:
        """Everything the project asks for that motet does not honour, one line each (the
        config's unused keys, which file wins, each step's `unhonoured`): logged once when the
        runtime starts, so nothing is dropped silently."""
        from .project import start_report

        return start_report(self.project, self.steps)

    @property
    def http_steps(self) -> list[tuple[Step, HttpTrigger]]:
        return [(s, t) for s in self.steps for t in s.of_type(HttpTrigger)]

    def jsonify(self, value: Any) -> Any:
        return to_json(self.converter, value)

    # -- running -------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise RuntimeError("the runtime's clock exists once run() has started")
        return self._clock

    async def emit(
        self,
        topic: str,
        data: Any = None,
        *,
        group: str | None = None,
        priority: int = 0,
        trace_id: str | None = None,
        delay: Any = None,
        at: Any = None,
        key: str | None = None,
        expires: Any = None,
    ) -> str:
        """Publish a message from the embedding program (outside any handler); returns its
        id once the backend holds it. Only while `run()` is running. `delay`/`at`, `key`
        and `expires` work as in `ctx.emit`."""
        if self.publisher is None or not self._ready:
            raise RuntimeError(
                "Runtime.emit needs a running runtime: call it inside "
                "`async with open_runtime(...)` or after nursery.start(run)"
            )
        if delay is None and at is None and key is None and expires is None:
            # The common emit, without passing on five keywords that say "none".
            return await self.publisher.publish(
                topic, data, trace_id=trace_id or new_id(), group=group, priority=priority
            )
        return await self.publisher.publish(
            topic,
            data,
            trace_id=trace_id or new_id(),
            group=group,
            priority=priority,
            source=None,
            delay=delay,
            at=at,
            key=key,
            expires=expires,
        )

    @property
    def records(self) -> Records:
        """What settling a delivery keeps (the project's `message_retention` and
        `result_max_bytes`)."""
        return Records(
            retention=self.project.message_retention,
            max_bytes=self.project.result_max_bytes,
            jsonify=self.jsonify,
        )

    async def message(self, message_id: str) -> MessageStatus | None:
        """The status of every delivery of the message `message_id` (as `emit` returned
        it), or None when the backend knows nothing of it (never emitted, or its settled
        record is past `message_retention`). Needs the backend running."""
        check_message_id(message_id)
        self._check_backend("Runtime.message")
        return await self.backend.message_status(message_id)

    async def cancel(self, message_id: str) -> CancelOutcome:
        """Cancel the message `message_id`: each delivery still queued, delayed or
        retrying is taken out of its queue and kept as `cancelled`; a running handler is
        cancelled at its next checkpoint (here at once; on other instances by their lease
        keeper, within a third of the lease) and its message is not retried. Deliveries
        already settled are left alone: then `outcome.any` is False and
        `outcome.describe(id)` says why."""
        check_message_id(message_id)
        self._check_backend("Runtime.cancel")
        now = self.clock.now()
        outcome = await self.backend.cancel(
            message_id, keep_until=self.records.cancel_keep_until(now)
        )
        if outcome.running:
            for actor in self.actors:
                actor.cancel_running([message_id])
        return outcome

    def _check_backend(self, what: str) -> None:
        if self.publisher is None or not self._ready:
            raise RuntimeError(
                f"{what} needs a running runtime: call it inside "
                "`async with open_runtime(...)` or after nursery.start(run)"
            )

    def stop(self) -> None:
        """Ask for a graceful stop: gateway, then cron, then running handlers (up to
        `shutdown_timeout`), then the backend."""
        self._stop.set()

    async def run(
        self, *, task_status: trio.TaskStatus[Runtime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._clock is None:
            self._clock = WallClock()
        clock = self._clock
        self.hub = hub = LogHub(clock.now, level=self.project.log_level)
        if self.options.log_sink:
            hub.add_sink(stream_sink(self.options.log_stream, fmt=self.project.log_format))
        if self.options.stdlib_logging:
            hub.add_sink(stdlib_sink())
        if self.observer.watches("on_log"):
            hub.add_sink(self.observer.on_log)
        self.observer.on_start(self.view)
        async with trio.open_nursery() as backend_nursery:
            # The backend outlives every part that uses it, on a hard stop too: the step
            # actors are shielded children their supervisor stops one by one (finishing
            # their acks), so a backend cancelled with them would be gone under them.
            backend_scope = trio.CancelScope(shield=True)

            async def run_backend(*, task_status: trio.TaskStatus[Any]) -> None:
                with backend_scope:
                    await self.backend.run(clock, task_status=task_status)

            await backend_nursery.start(run_backend)
            try:
                await self._run_parts(backend_nursery, clock, hub, task_status)
            finally:
                backend_scope.cancel()
        hub.logger().info("motet runtime stopped")

    async def _run_parts(
        self,
        backend_nursery: trio.Nursery,
        clock: Clock,
        hub: LogHub,
        task_status: trio.TaskStatus[Runtime],
    ) -> None:
        """Everything above the backend, started in order and stopped in reverse."""
        await self.backend.declare(self.subscriptions)
        observer = self.observer
        self.publisher = Publisher(
            self.backend,
            clock,
            functools.partial(to_json, self.converter),  # self.jsonify, one frame fewer per emit
            self.subscriptions,
            on_envelope=observer.hook("on_envelope"),
        )
        self.dispatcher = Dispatcher(
            emitter=self.publisher,
            state=self.backend,
            jsonify=self.jsonify,
            hub=hub,
            clock=clock,
            messages=self.backend,
            on_run=observer.hook("on_run"),
            on_state=observer.hook("on_state"),
            handlers=self.project.handlers,
        )
        if self.stream_configs:
            from .streams import StreamService

            self.streams = StreamService(
                self.stream_configs,
                self.backend,
                self.converter,
                capacity=self.options.stream_buffer,
                on_error=lambda line, exc: hub.logger().error(line, error=repr(exc)),
            )
            self.dispatcher.streams = self.streams.api  # type: ignore[attr-defined]
        try:
            await self._run_actors_and_parts(backend_nursery, clock, hub, task_status)
        finally:
            self.dispatcher.close()  # the asyncio loop's thread, once no handler runs

    async def _run_actors_and_parts(
        self,
        backend_nursery: trio.Nursery,
        clock: Clock,
        hub: LogHub,
        task_status: trio.TaskStatus[Runtime],
    ) -> None:
        streams = self.streams
        async with trio.open_nursery() as actor_nursery:
            if streams is not None:
                await actor_nursery.start(streams.run)
            self.supervisor = self._supervisor()
            await actor_nursery.start(self.supervisor.run)
            cron_scope = trio.CancelScope()
            if self.plan.cron_jobs:
                await actor_nursery.start(self._run_cron, cron_scope, clock, hub)
            async with AsyncExitStack() as stack:
                for part in self.parts:
                    nursery = await stack.enter_async_context(trio.open_nursery())
                    # Unwound last in, first out: each part is cancelled, then waited for.
                    stack.callback(nursery.cancel_scope.cancel)
                    self.gateway_urls += await nursery.start(part.run, self)
                self._ready = True
                for line in self.start_warnings():
                    hub.logger().warn(line)
                for line in self.start_report():
                    hub.logger().warn(line)
                hub.logger().info(
                    "motet runtime started",
                    steps=len(self.steps),
                    subscriptions=len(self.subscriptions),
                    backend=self.backend.name,
                    urls=self.gateway_urls,
                )
                task_status.started(self)
                await self._stop.wait()
                # Lease nothing more: only work already started is drained below.
                for actor in self.actors:
                    actor.stop_fetching()
                # Stream clients reconnect (to another instance) rather than hold the drain.
                if streams is not None:
                    streams.hub.close_all("the server is stopping; reconnect")
                for part in reversed(self.parts):
                    await part.drain()
                cron_scope.cancel()
                await self._drain_handlers()
            actor_nursery.cancel_scope.cancel()
        backend_nursery.cancel_scope.cancel()

    async def _run_cron(
        self,
        scope: trio.CancelScope,
        clock: Clock,
        hub: LogHub,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with scope:
            await run_cron(
                list(self.plan.cron_jobs),
                clock=clock,
                backend=self.backend,
                is_running=self.cron_running,
                on_skip=self._cron_skipped,
                logger=hub.logger,
                task_status=task_status,
            )

    async def _drain_handlers(self) -> None:
        assert self.dispatcher is not None
        with trio.move_on_after(self.options.shutdown_timeout):
            # `held` covers deliveries leased before the stop and not yet handled.
            while self.dispatcher.in_flight or any(actor.held for actor in self.actors):
                await trio.sleep(0.01)

    def _supervisor(self) -> Supervisor:
        assert self.publisher is not None and self.dispatcher is not None
        children = []
        for spec in self.plan.actors:
            step, trigger, sub = spec.step, spec.trigger, spec.subscription
            actor = StepActor(
                StepWiring(
                    step,
                    trigger,
                    sub,
                    backend=self.backend,
                    dispatcher=self.dispatcher,
                    publisher=self.publisher,
                    policy=RetryPolicy.from_options(sub.options, jitter=self.options.retry_jitter),
                    validate=self._validator(trigger),
                    on_failure=self.observer.on_failure,
                    on_settled=self.observer.on_settled,
                    records=self.records,
                )
            )
            self.actors.append(actor)
            if isinstance(trigger, CronTrigger):
                self._cron_actors[sub.topic.removeprefix(CRON_TOPIC_PREFIX)] = actor
            children.append(
                ChildSpec(
                    id=actor.name,
                    start=actor.run,
                    restart="permanent",
                    shutdown=self.options.shutdown_timeout,
                )
            )
        return Supervisor(
            children,
            SupervisorOptions(
                name="steps",
                strategy="one_for_one",
                intensity=self.options.restart_intensity,
                period=self.options.restart_period,
                on_event=self._supervisor_event,
            ),
        )

    def _validator(self, trigger: Any) -> Callable[[Any], Any] | None:
        schema = getattr(trigger, "input", None)
        if schema is None:
            return None
        return functools.partial(validate, self.converter, schema=schema)

    def _cron_skipped(self, name: str, scheduled: float) -> None:
        assert self.hub is not None
        actor = self._cron_actors.get(name)
        step = actor.step.name if actor is not None else name
        trigger = actor.trigger if actor is not None else None
        self.hub.logger(step=step).warn(
            "cron tick skipped: the previous run is still running",
            scheduled=scheduled,
            expression=getattr(trigger, "expression", None),
        )

    def _supervisor_event(self, event: SupervisorEvent) -> None:
        if self.hub is None:
            return
        log = self.hub.logger()
        error = describe(event.error) if event.error else None
        if event.kind == "exited" and error:
            log.error("step actor crashed", child=event.child, error=error, restarts=event.restarts)
        elif event.kind == "restarted":
            log.warn("step actor restarted", child=event.child, restarts=event.restarts)
        elif event.kind == "gave_up":
            log.error("step supervisor gave up", child=event.child, error=error)


class _View:
    """A runtime as observers and the console see it (`RuntimeView`): read-only."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def steps(self) -> Sequence[Step]:
        return tuple(self._runtime.steps)

    @property
    def subscriptions(self) -> Sequence[Subscription]:
        return self._runtime.plan.subscriptions

    @property
    def cron_jobs(self) -> Sequence[CronJob]:
        return self._runtime.plan.cron_jobs

    @property
    def backend(self) -> Backend:
        return self._runtime.backend

    @property
    def clock(self) -> Clock:
        return self._runtime.clock

    @property
    def project(self) -> ProjectConfig:
        return self._runtime.project

    @property
    def streams(self) -> StreamService | None:
        """The runtime's streams (definitions, storage, live subscribers), once running;
        None when the project declares no stream."""
        return self._runtime.streams

    @property
    def urls(self) -> Sequence[str]:
        return tuple(self._runtime.gateway_urls)

    def logger(self, **bound: Any) -> Logger:
        hub = self._runtime.hub
        if hub is None:
            raise RuntimeError("the runtime's logger exists once run() has started")
        return hub.logger(**bound)

    def running(self) -> Mapping[str, int]:
        dispatcher = self._runtime.dispatcher
        return dict(dispatcher.running) if dispatcher is not None else {}

    def cron_running(self, name: str) -> bool:
        return self._runtime.cron_running(name)

    async def message(self, message_id: str) -> MessageStatus | None:
        return await self._runtime.message(message_id)

    async def cancel(self, message_id: str) -> CancelOutcome:
        return await self._runtime.cancel(message_id)

    def throttling(self) -> Mapping[str, Throttling]:
        return {
            actor.subscription.key: actor.gate.statistics()
            for actor in self._runtime.actors
            if actor.gate is not None
        }


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    """Run `runtime` in the background for the duration of the block, then stop it
    gracefully. An error raised in the block comes out as itself, not wrapped in the
    nursery's exception group; so does a motet error that stopped the runtime from starting
    (a port in use is one GatewayError naming the address, not five nested groups)."""
    body_error: Exception | None = None
    started = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            started = True
            try:
                yield runtime
            except Exception as exc:  # re-raised below, outside the nursery, unwrapped
                body_error = exc
            finally:
                runtime.stop()
    except BaseExceptionGroup as group:
        sole = None if started else _sole_motet_error(group)
        if sole is None:
            raise
        raise sole from sole.__cause__  # its own cause (the OSError) kept, the groups dropped
    if body_error is not None:
        raise body_error


def _sole_motet_error(group: BaseExceptionGroup[BaseException]) -> MotetError | None:
    """The one error inside `group`'s nesting when there is exactly one and it is motet's."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) == 1 and isinstance(leaves[0], MotetError):
        return leaves[0]
    return None
