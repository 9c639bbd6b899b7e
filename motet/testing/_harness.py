"""Run a motet app inside a test: memory backend, in-process HTTP, virtual wall clock.

    async def test_adoption(autojump_clock):
        async with open_test_runtime("steps", start=datetime(2026, 1, 1, tzinfo=UTC)) as app:
            response = await app.http.post("/pets", json={"name": "Rex", ...})
            await app.settle()
            assert app.messages("pet-created")[0]["name"] == "Rex"

Under pytest-trio's `autojump_clock`, retries, leases and cron run on virtual time: a
month of daily cron takes milliseconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing
from trio.testing import MockClock

from .._clock import WallClock
from .._envelope import DeadLetter, Envelope, new_id
from .._errors import HandlerError, MotetError
from .._logging import LogRecord
from .._observer import Observer
from .._runtime import Runtime, RuntimeOptions, running
from .._status import CancelOutcome, MessageStatus
from ..backends._memory import MemoryBackend
from ..backends._protocol import Backend
from ..project import ProjectConfig, assemble_config
from ..state._store import StateStore
from ..steps import load_steps
from ..steps._model import Step
from ..streams import StreamConfig, Streams, StreamService
from ._http import TestClient

SETTLE_POLL = 30.0  # s of virtual time: a safety net; handler runs and publishes wake settle()
DEAD_LETTER_PAGE = 1_000_000


class VirtualTimeRequired(MotetError):
    """A test drives virtual time (the harness, `advance()`, the `motet_app` fixture) while
    trio runs on its real clock, where a simulated month would take a real month."""


def require_mock_clock(what: str) -> None:
    """Fail at once unless the current trio run uses a MockClock (pytest-trio runs a test
    on one only when the test function itself takes `autojump_clock` or `mock_clock`)."""
    if isinstance(trio.lowlevel.current_clock(), MockClock):
        return
    raise VirtualTimeRequired(
        f"{what} runs on virtual time, but this trio run uses the real clock; "
        "add `autojump_clock` to the test's arguments, e.g. "
        "`async def test_x(autojump_clock):` (pytest-trio), or run trio with "
        "`clock=trio.testing.MockClock(autojump_threshold=0)`"
    )


class TestRuntime(Observer):
    """A running runtime plus what a test needs to drive and observe it: an observer of
    the runtime (`motet.Observer`) from the moment the runtime has started."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.logs: list[LogRecord] = []
        self._envelopes: dict[str, list[Envelope]] = defaultdict(list)
        self._failures: list[HandlerError] = []
        self._activity = trio.Event()
        self._failures_seen = 0
        self._watching = False

    def _attach(self, runtime: Runtime) -> None:
        """Called once `runtime` is up: what it does from now on is recorded."""
        self.runtime = runtime
        self.http = TestClient(runtime)
        self._watching = True

    # -- observer hooks ------------------------------------------------------------------

    def on_envelope(self, envelope: Envelope, source: str | None) -> None:
        if self._watching:
            self._envelopes[envelope.topic].append(envelope)
            self._activity.set()

    def on_settled(self) -> None:
        # (No `on_run`: every delivery that ran ends in an ack, retry or dead letter, which
        # lands here; not overriding it spares each handler call its run record.)
        self._activity.set()

    def on_log(self, record: LogRecord) -> None:
        if self._watching:
            self.logs.append(record)

    def on_failure(self, failure: HandlerError) -> None:
        self._failures.append(failure)

    # -- driving -------------------------------------------------------------------------

    @property
    def clock(self) -> WallClock:
        clock = self.runtime.clock
        assert isinstance(clock, WallClock)
        return clock

    def now(self) -> datetime:
        return self.clock.now_datetime()

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
        """Publish a message as if a step had emitted it (no `emits` check). `delay`/`at`,
        `key` and `expires` work as in `ctx.emit`: a delayed message waits for virtual time
        (`advance`), and `settle` does not wait for it."""
        assert self.runtime.publisher is not None
        return await self.runtime.publisher.publish(
            topic,
            data,
            trace_id=trace_id or new_id(),
            group=group,
            priority=priority,
            source="test",
            delay=delay,
            at=at,
            key=key,
            expires=expires,
        )

    @property
    def state(self) -> StateStore:
        return StateStore(self.runtime.backend, self.runtime.jsonify, "test")

    @property
    def streams(self) -> Streams:
        """The project's streams as handlers see them: `await app.streams.todo.get_group(g)`
        (none declared: every name is an `UnknownStreamError` that says so)."""
        service = self.runtime.streams
        if service is None:  # the runtime makes none for a project without streams
            service = StreamService([], self.runtime.backend, self.runtime.converter)
        return service.api

    async def advance(self, by: timedelta | float) -> None:
        """Let (virtual) time pass: cron fires, retries come due."""
        require_mock_clock("TestRuntime.advance()")
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        await trio.sleep(seconds)

    async def run_until(self, when: datetime) -> None:
        require_mock_clock("TestRuntime.run_until()")
        await self.clock.sleep_until(when.timestamp())

    async def settle(self, *, fail_fast: bool = False) -> None:
        """Return when nothing is queued, running, leased or waiting for a retry. Cron ticks
        still to come do not count. With `fail_fast`, re-raise the first handler failure
        since the previous settle (a HandlerError whose __cause__ is what the handler
        raised); without it, failures are left to retries and dead letters."""
        failures = self._failures
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if fail_fast and len(failures) > self._failures_seen:
                failure = failures[self._failures_seen]
                self._failures_seen = len(failures)
                raise failure
            if await self._idle():
                self._failures_seen = len(failures)
                return
            self._activity = trio.Event()
            with trio.move_on_after(SETTLE_POLL):
                await self._activity.wait()

    async def _idle(self) -> bool:
        runtime = self.runtime
        assert runtime.dispatcher is not None
        if runtime.dispatcher.in_flight or any(a.pending_acks() for a in runtime.actors):
            return False
        depth = await runtime.backend.depth()
        return all(d.pending == 0 for d in depth.values())

    # -- observing -----------------------------------------------------------------------

    def envelopes(self, topic: str) -> list[Envelope]:
        return list(self._envelopes.get(topic, ()))

    def messages(self, topic: str) -> list[Any]:
        """The data of every message published on `topic`, in publish order."""
        return [e.data for e in self._envelopes.get(topic, ())]

    def log_messages(self, step: str | None = None, *, level: str | None = None) -> list[str]:
        return [
            r.message
            for r in self.logs
            if (step is None or r.step == step) and (level is None or r.level == level)
        ]

    def logs_of(self, step: str) -> list[LogRecord]:
        return [r for r in self.logs if r.step == step]

    @property
    def failures(self) -> list[HandlerError]:
        return list(self._failures)

    async def dead_letters(self, step: str | None = None) -> list[DeadLetter]:
        letters = await self.runtime.backend.dead_letters(None, limit=DEAD_LETTER_PAGE)
        return [d for d in letters if step is None or d.subscription.startswith(step + "@")]

    async def redrive(self, letters: Sequence[DeadLetter]) -> int:
        return await self.runtime.backend.redrive([d.id for d in letters])

    async def message(self, message_id: str) -> MessageStatus | None:
        """The status of each delivery of a message (`Runtime.message`)."""
        return await self.runtime.message(message_id)

    async def cancel(self, message_id: str) -> CancelOutcome:
        """Cancel a message (`Runtime.cancel`): queued and delayed deliveries are taken out,
        running handlers are cancelled."""
        return await self.runtime.cancel(message_id)


@asynccontextmanager
async def open_test_runtime(
    steps: Sequence[Step] | str | Path = "steps",
    *,
    start: datetime | None = None,
    project: ProjectConfig | None = None,
    backend: Backend | None = None,
    retry_jitter: float = 0.0,
    root: str | Path = ".",
    log_to_stdout: bool = False,
    observers: Sequence[Observer] = (),
    streams: Sequence[StreamConfig] | None = None,
) -> AsyncIterator[TestRuntime]:
    """Open a runtime for a test.

    `steps` is a folder (relative to `root`) or Step objects. The project config (queue
    options, timezone) is assembled as `motet start` assembles it (`root`'s motet.toml or
    pyproject.toml < `MOTET_*` variables) unless `project` is given; the backend is always
    `backend` (default: a fresh MemoryBackend), whatever the config names. `start`
    anchors the virtual wall clock (default 2026-01-01T00:00:00Z, so tests never depend on
    today's date); retries are exact unless `retry_jitter` is set. `observers` watch the
    runtime beside the harness. `streams` (Motia's streams, `StreamConfig`s) default to the
    stream files of the steps folder. With the default backend the test must run on trio's
    MockClock (`autojump_clock`); a backend given explicitly may run on real time."""
    if backend is None:
        require_mock_clock("open_test_runtime() with the default memory backend")
    _check_clock(backend)
    if isinstance(steps, str | Path):
        steps = load_steps(Path(root) / steps)
    if project is None:
        project = assemble_config(Path(root))
    anchor = start if start is not None else datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    harness = TestRuntime()
    runtime = Runtime(
        steps,
        backend=backend if backend is not None else MemoryBackend(),
        project=project,
        clock=WallClock(anchor),
        options=RuntimeOptions(
            retry_jitter=retry_jitter, log_sink=log_to_stdout, shutdown_timeout=0.0
        ),
        observers=[harness, *observers],
        streams=streams,
    )
    async with running(runtime):
        harness._attach(runtime)
        yield harness


def _check_clock(backend: Backend | None) -> None:
    clock = trio.lowlevel.current_clock()
    if (
        backend is None
        or isinstance(backend, MemoryBackend)
        or not isinstance(clock, MockClock)
        or clock.autojump_threshold > 0
    ):
        return
    raise ValueError(
        f"open_test_runtime: the {getattr(backend, 'name', type(backend).__name__)} backend "
        "works in threads or over sockets, and under an autojump MockClock virtual time leaps "
        "while it waits (leases expire, timeouts fire). Run such a test on real time (drop "
        "autojump_clock), or use the memory backend (the default) for virtual time."
    )
