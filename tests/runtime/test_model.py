"""A stateful model test of the whole runtime (Hypothesis RuleBasedStateMachine).

Rules emit to a fan-out topic (two subscribers), a fifo topic (message groups) and a
priority topic; make handlers succeed, fail n times, fail always, sleep past their timeout
or refuse with NonRetryable; write state that fires a state trigger whose condition passes,
filters or raises; let virtual time pass; crash step actors (the supervisor restarts them);
redrive and discard dead letters. The model says which handler runs must happen, at which
attempt, in what order per fifo group and by priority, and where every message ends:
handled, filtered by its condition, or dead-lettered (and listable until redriven or
discarded).

`World` runs one real `Runtime` on its own thread (`trio.run` under a `MockClock` that
only moves when told) with steps whose handlers are defined here: each handler looks up
how its message must behave (succeed, fail n times, fail always, sleep past its timeout,
refuse with NonRetryable) and records every run it makes. The test thread drives it one
call at a time (`World.call`), so Hypothesis rules stay synchronous.

Time moves only through `advance` and `settle`, which jump the clock from one trio
deadline to the next, and only once the runtime is quiet: every task blocked *and* no
call in a worker thread (SQLite's writer and reader run there). That is what makes a
threaded backend deterministic under virtual time, where an autojump clock would leap
while a commit is on its way. On SQLite a rule also restarts the whole runtime on the same
file (a hard stop, as when the process dies).

`bench/soak_model.py` runs many more examples than CI.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from trio.testing import MockClock

import motet
from motet._clock import WallClock
from motet._envelope import DeadLetter, Delivery, Subscription, new_id
from motet._runtime import Runtime, RuntimeOptions
from motet.backends import MemoryBackend
from motet.backends._sqlite import SqliteBackend
from motet.state._store import StateStore
from motet.steps import load_step
from motet.supervision import ChildSpec

T = TypeVar("T")

Backend = Literal["memory", "sqlite"]
Mode = Literal["ok", "slow", "transient", "permanent", "timeout", "nonretryable"]
Action = Literal["ok", "slow", "fail", "timeout", "nonretryable"]  # of one attempt
# "crashed": cut off by an actor crash or a runtime restart; "lost": leased ahead and never
# run, the restart dropping it with the runtime (both spend that attempt).
Outcome = Literal["running", "ok", "fail", "timeout", "nonretryable", "crashed", "lost"]
LOST = ("crashed", "lost")

TIMEOUT = 5.0  # s, every subscription's per-attempt timeout
SLOW = 2.0  # s a "slow" handler sleeps (inside its timeout)
OVERSLEEP = TIMEOUT + 10.0  # s a handler that must time out sleeps
LEASE = 30.0  # s, the default lease every subscription keeps
NAMESPACE = "docs"
STATE_TOPIC = f"state:{NAMESPACE}"
DLQ_TOPIC = "prio.failed"
STOP_WAIT = 60.0  # s of real time for a world's runtime to stop once told


@attrs.frozen
class Sub:
    """One subscription of the test app, as the model sees it."""

    step: str
    topic: str
    max_retries: int
    retry_delay: int = 1000  # ms
    concurrency: int = 1
    strategy: str = "standard"
    dead_letter_queue: str | None = None
    rate_limit: int | None = None  # starts per second

    @property
    def key(self) -> str:
        return f"{self.step}@{self.topic}"

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retries

    def retry_delay_after(self, attempt: int) -> float:
        return self.retry_delay / 1000 * 2 ** (attempt - 1)  # jitter 0; far below the cap


FAN_A = Sub("FanA", "fan", max_retries=2, concurrency=2)
FAN_B = Sub("FanB", "fan", max_retries=1, retry_delay=500, rate_limit=20)
FIFO = Sub("Fifo", "fifo", max_retries=2, concurrency=2, strategy="fifo")
PRIO = Sub(
    "Prio",
    "prio",
    max_retries=1,
    strategy="priority",
    dead_letter_queue=DLQ_TOPIC,
)
WATCH = Sub("Watch", STATE_TOPIC, max_retries=2, retry_delay=2000)
ON_FAILED = Sub("OnPrioFailed", DLQ_TOPIC, max_retries=0)
SUBS = [FAN_A, FAN_B, FIFO, PRIO, WATCH, ON_FAILED]


@attrs.frozen
class Behavior:
    """What a handler does on its n-th attempt."""

    mode: Mode = "ok"
    times: int = 0  # transient / timeout: this many attempts fail first

    def action(self, attempt: int) -> Action:
        if self.mode == "transient":
            return "fail" if attempt <= self.times else "ok"
        if self.mode == "timeout":
            return "timeout" if attempt <= self.times else "ok"
        if self.mode == "permanent":
            return "fail"
        return self.mode


@attrs.define
class Run:
    attempt: int
    gen: int
    started: float
    outcome: Outcome = "running"
    ended: float = math.nan


@attrs.define
class Unit:
    """One copy of one message for one subscriber (fan-out makes two), or one state change."""

    sub: Sub
    n: int
    behaviors: list[Behavior]  # per generation: a redrive starts the next one
    group: str | None = None
    priority: int = 0
    condition: str | None = None  # state units: "pass" | "skip" | "raise"
    published: int = 0  # event number once the publish (or state write) returned
    message_id: str = ""
    buried: set[int] = attrs.Factory(set)  # generations the backend was told to bury
    last_lease: tuple[int, int] = (-1, 0)  # (generation, attempt) of the latest delivery
    runs: list[Run] = attrs.Factory(list)
    condition_calls: list[int] = attrs.Factory(lambda: [0])  # per generation
    discarded: bool = False
    dlq_published: int = 0  # copies seen on the dead-letter topic

    @property
    def gen(self) -> int:
        return len(self.behaviors) - 1

    @property
    def name(self) -> str:
        return f"{self.sub.step}#{self.n}"

    def current_runs(self) -> list[Run]:
        return [r for r in self.runs if r.gen == self.gen]

    def verdict(self) -> str:
        """Where this generation stands by what was observed: "pending", "handled",
        "filtered" (a condition said no), "dead", or "abandoning" (its last allowed attempt
        was lost in a crash: it is dead-lettered once its lease runs out)."""
        if self.condition == "skip":
            return "filtered"
        if self.condition == "raise":
            calls = self.condition_calls[self.gen]
            dead = calls >= self.sub.max_attempts or self.gen in self.buried
            return "dead" if dead else "pending"
        runs = self.current_runs()
        for run in runs:
            if run.outcome == "ok":
                return "handled"
            if run.outcome == "nonretryable":
                return "dead"
            if run.outcome in ("fail", "timeout") and run.attempt >= self.sub.max_attempts:
                return "dead"
        if runs and runs[-1].outcome in LOST and runs[-1].attempt >= self.sub.max_attempts:
            return "dead" if self.gen in self.buried else "abandoning"
        return "pending"


class Boom(Exception):
    """A handler's ordinary, retryable failure."""


# -- counting worker-thread calls ------------------------------------------------------


class ThreadWatch:
    """How many `trio.to_thread.run_sync` calls are on their way, process-wide."""

    def __init__(self) -> None:
        self.busy = 0
        self._idle: trio.Event | None = None

    def done(self) -> None:
        self.busy -= 1
        if self.busy == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        if self.busy:
            self._idle = idle = trio.Event()
            await idle.wait()


THREADS = ThreadWatch()


@contextlib.contextmanager
def counting_threads() -> Iterator[None]:
    """Count worker-thread calls while the model runs (SQLite's writer and reader)."""
    original = trio.to_thread.run_sync

    async def run_sync(*args: Any, **kwargs: Any) -> Any:
        THREADS.busy += 1
        try:
            return await original(*args, **kwargs)
        finally:
            THREADS.done()

    trio.to_thread.run_sync = run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        trio.to_thread.run_sync = original  # type: ignore[assignment]


async def quiesce() -> None:
    """Return once every other task is blocked and no worker thread is busy, without
    letting virtual time pass."""
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if not THREADS.busy:
            return
        await THREADS.wait_idle()


# -- the backend, watched --------------------------------------------------------------


class Recording:
    """The real backend, with receive / retry / bury calls reported to the world."""

    def __init__(self, inner: Any, world: World) -> None:
        self._inner = inner
        self._world = world
        # Receiving waits for this: the actors the runtime starts are swapped for crashable
        # ones first, and one cancelled in a lease (on SQLite, a commit in a worker thread)
        # would hand it back only later, leaving a priority queue's best message out of
        # reach meanwhile.
        self.open = trio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        await self.open.wait()
        called = self._world.tick()
        got = await self._inner.receive(subscription, max_count)
        self._world.on_leased(subscription.key, got, called)
        return got

    async def retry(self, delivery: Delivery, *, delay: float, error: str) -> None:
        await self._inner.retry(delivery, delay=delay, error=error)
        self._world.on_retried(delivery, delay)

    async def bury(self, delivery: Delivery, *, error: str, **more: Any) -> DeadLetter:
        # Noted before the call: once it commits, a fifo group's next message may be leased
        # and started before this task resumes.
        self._world.on_buried(delivery)
        return await self._inner.bury(delivery, error=error, **more)


# -- the world: runtime + handlers + observations ----------------------------------------


class ActorCrash(Exception):
    """Raised inside a step actor's run by the test: a bug, not a handler error."""


class World:
    def __init__(self, backend: Backend) -> None:
        self.backend_kind = backend
        self.units: dict[tuple[str, int], Unit] = {}
        self.numbers = itertools.count(1)
        self.events = itertools.count(1)
        self.violations: list[str] = []
        self.crashing: set[str] = set()  # steps whose actor is being crashed right now
        self.crashes = 0
        self.restarts = 0
        self.state_keys: list[tuple[str, int]] = []  # (key, n of the unit that wrote it)
        # Per priority unit: when it became ready again after a retry (trio time, event).
        self.retried: dict[tuple[str, int], tuple[float, int]] = {}
        self.leased: set[tuple[int, int]] = set()  # priority units (n, gen) leased at least once
        self.group_order: dict[str, list[tuple[Unit, int]]] = {}  # fifo: (unit, gen) in order
        self.rate_starts: dict[str, collections.deque[float]] = {}  # last second's starts
        self._tmp = tempfile.mkdtemp(prefix="motet-model-") if backend == "sqlite" else None
        self._crash_events: dict[str, trio.Event] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="motet-model", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._token is None:
            raise RuntimeError("the runtime did not start") from self._error

    # -- the trio side -------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            trio.run(self._main, clock=MockClock())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def _steps(self) -> list[motet.Step]:
        def handler(step: str) -> Callable[[Any, Any], Awaitable[None]]:
            async def handle(data: Any, ctx: Any) -> None:
                await self._run(step, data, ctx)

            return handle

        steps = []
        for sub in SUBS:
            options: dict[str, Any] = {
                "max_retries": sub.max_retries,
                "retry_delay": sub.retry_delay,
                "concurrency": sub.concurrency,
                "strategy": sub.strategy,
                "timeout": TIMEOUT,
            }
            if sub.dead_letter_queue:
                options["dead_letter_queue"] = sub.dead_letter_queue
            if sub.rate_limit:
                options["rate_limit"] = f"{sub.rate_limit}/s"
            if sub is WATCH:
                trigger = motet.state(NAMESPACE, condition=self._condition_form(), **options)
            else:
                trigger = motet.queue(sub.topic, **options)
            steps.append(load_step({"name": sub.step, "triggers": [trigger]}, handler(sub.step)))
        return steps

    async def _main(self) -> None:
        self._clock = WallClock(datetime(2026, 1, 1, tzinfo=UTC))
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._start_runtime()
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    async def _start_runtime(self) -> None:
        """Start a runtime on the world's backend (a new instance on the same SQLite file
        after a restart), with crashable actors."""
        if self._tmp is not None:
            inner: Any = SqliteBackend(Path(self._tmp) / "motet.db")
        else:
            inner = MemoryBackend()
        backend = Recording(inner, self)
        self.runtime = runtime = Runtime(
            self._steps(),
            backend=backend,  # type: ignore[arg-type]
            clock=self._clock,  # one wall clock across restarts: time never goes back
            options=RuntimeOptions(
                retry_jitter=0.0,
                shutdown_timeout=0.0,
                log_sink=False,
                restart_intensity=1_000_000,
            ),
        )
        self.state = StateStore(runtime.backend, runtime.jsonify, "model")
        scope = self._runtime_scope = trio.CancelScope()
        stopped = self._runtime_stopped = trio.Event()

        async def serve(*, task_status: Any) -> None:
            try:
                with scope:
                    await runtime.run(task_status=task_status)
            finally:
                stopped.set()

        await self._nursery.start(serve)
        await self._make_crashable()
        backend.open.set()

    async def restart(self) -> None:
        """Stop the runtime at once (its caller cancels it: running handlers are cut off,
        as in a crash) and start a new one on the same SQLite file."""
        self.crashing.update(s.step for s in SUBS)
        self.restarts += 1
        now = trio.current_time()
        for unit in self.units.values():
            gen, attempt = unit.last_lease
            if unit.condition not in (None, "pass") or gen != unit.gen:
                continue  # no handler run to wait for, or an older generation
            if attempt > unit.sub.max_attempts:
                continue  # never run: dead-lettered as soon as it was received
            if not any(r.attempt == attempt for r in unit.current_runs()):
                unit.runs.append(Run(attempt, gen, now, "lost", now))
        self._runtime_scope.cancel()
        await self._runtime_stopped.wait()
        await quiesce()
        # The new actors may start handlers before _make_crashable swaps them for crashable
        # ones; those runs end as in a crash too.
        await self._start_runtime()
        await quiesce()
        self.crashing.clear()

    async def _make_crashable(self) -> None:
        """Run each step actor under the supervisor through a wrapper that raises on demand,
        so a crash goes through the supervisor's real restart path."""
        supervisor = self.runtime.supervisor
        assert supervisor is not None
        for actor in self.runtime.actors:

            async def run(
                actor: Any = actor, *, task_status: Any = trio.TASK_STATUS_IGNORED
            ) -> None:
                crash = self._crash_events[actor.step.name] = trio.Event()
                async with trio.open_nursery() as nursery:
                    await nursery.start(actor.run)
                    task_status.started()
                    await crash.wait()
                    raise ActorCrash(actor.name)

            await supervisor.terminate_child(actor.name)
            await supervisor.start_child(ChildSpec(id=actor.name, start=run, shutdown=0.0))

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn` on the runtime's thread and return its result."""
        if self._error is not None:
            raise AssertionError("the runtime stopped") from self._error
        try:
            return trio.from_thread.run(fn, trio_token=self._token)
        except (trio.RunFinishedError, trio.Cancelled):
            self._thread.join(10.0)  # the run is over: its error is what to show
            raise AssertionError("the runtime stopped") from self._error

    def close(self) -> None:
        if self._stop is not None and self._error is None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(STOP_WAIT)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._thread.is_alive():
            raise AssertionError(f"the runtime did not stop within {STOP_WAIT:g} s")

    # -- observations --------------------------------------------------------------------

    def tick(self) -> int:
        return next(self.events)

    def violation(self, text: str) -> None:
        self.violations.append(f"t={trio.current_time():g}: {text}")

    def _unit_of(self, step: str, data: Any) -> Unit:
        if step == WATCH.step:  # a state change: the unit of a delete has the negative n
            if data["event"] == "deleted":
                return self.units[(step, -data["old_value"]["n"])]
            return self.units[(step, data["value"]["n"])]
        return self.units[(step, data["n"])]

    def _condition_form(self) -> Any:
        """The condition as users write it: Motia's `(input, ctx)` form."""

        def condition(event: Any, ctx: Any) -> bool:
            return self._condition(event)

        return condition

    def _condition(self, event: Any) -> bool:
        unit = self._unit_of(WATCH.step, event)
        unit.condition_calls[unit.gen] += 1
        if unit.condition == "raise":
            if event["value"] is None:
                return bool(event["value"]["cond"])  # TypeError, as user code reading a delete
            raise ValueError(f"condition broke on {unit.name}")
        return unit.condition == "pass"

    async def _run(self, step: str, data: Any, ctx: Any) -> None:
        if step == ON_FAILED.step:
            found = (u for u in self.units.values() if u.sub is PRIO and u.message_id in str(data))
            unit = next(found, None)
            if unit is None:
                self.violation(f"dead-letter topic got an unknown message {data!r:.200}")
            else:
                unit.dlq_published += 1
            return
        unit = self._unit_of(step, data)
        attempt = ctx.message.attempt
        self._check_start(unit, attempt)
        run = Run(attempt, unit.gen, trio.current_time())
        unit.runs.append(run)
        action = unit.behaviors[unit.gen].action(attempt)
        try:
            if action == "fail":
                raise Boom(f"{unit.name} failed on attempt {attempt}")
            if action == "nonretryable":
                raise motet.NonRetryable(f"{unit.name} refused")
            if action == "slow":
                await trio.sleep(SLOW)
            elif action == "timeout":
                await trio.sleep(OVERSLEEP)
        except trio.Cancelled:
            run.ended = trio.current_time()
            if step in self.crashing:
                run.outcome = "crashed"
            else:
                run.outcome = "timeout"
                if abs(run.ended - run.started - TIMEOUT) > 1e-6:
                    self.violation(f"{unit.name} cut off at {run.ended - run.started:g} s")
            raise
        except motet.NonRetryable:
            run.outcome, run.ended = "nonretryable", trio.current_time()
            raise
        except Boom:
            run.outcome, run.ended = "fail", trio.current_time()
            raise
        run.outcome, run.ended = "ok", trio.current_time()
        if action == "timeout":
            self.violation(f"{unit.name} attempt {attempt} ran past its {TIMEOUT:g} s timeout")

    def _check_rate(self, sub: Sub) -> None:
        """A rate-limited step's starts in any second: at most its rate, plus the bucket's
        one token and its catch-up allowance (50 ms of the rate, at least one token); every
        start took a token, whatever crashed, retried or was re-driven on the way."""
        assert sub.rate_limit is not None
        now = trio.current_time()
        starts = self.rate_starts.setdefault(sub.step, collections.deque())
        starts.append(now)
        while starts[0] <= now - 1.0 + 1e-9:
            starts.popleft()
        allowed = sub.rate_limit + 1 + max(1, sub.rate_limit // 20)
        if len(starts) > allowed:
            self.violation(f"{sub.step}: {len(starts)} starts within 1 s, limit {allowed}")

    def _check_start(self, unit: Unit, attempt: int) -> None:
        where = f"{unit.name} gen {unit.gen} attempt {attempt}"
        if unit.sub.rate_limit:
            self._check_rate(unit.sub)
        if attempt > unit.sub.max_attempts:
            self.violation(f"{where}: over 1 + max_retries = {unit.sub.max_attempts}")
        runs = unit.current_runs()
        if attempt != len(runs) + 1:
            seen = [(r.attempt, r.outcome) for r in runs]
            self.violation(f"{where}: expected attempt {len(runs) + 1} after runs {seen}")
        verdict = unit.verdict()
        if verdict != "pending":
            self.violation(f"{where}: runs again after it was {verdict}")
        now = trio.current_time()
        if runs and runs[-1].outcome in ("fail", "timeout"):
            due = runs[-1].ended + unit.sub.retry_delay_after(runs[-1].attempt)
            if now < due - 1e-6:
                self.violation(f"{where}: retried {due - now:g} s before its backoff ran out")
        elif runs and runs[-1].outcome in LOST:
            # The lease keeper renews a lease every third of it: when the actor crashed,
            # at least two thirds were left.
            due = runs[-1].ended + LEASE * 2 / 3
            if now < due - 1e-6:
                self.violation(f"{where}: delivered again {due - now:g} s before its lease ran out")
        if unit.sub is FIFO and unit.group is not None:
            for earlier, gen in self.group_order[unit.group]:
                if earlier is unit and gen == unit.gen:
                    break
                if gen == earlier.gen and earlier.verdict() in ("pending", "abandoning"):
                    self.violation(
                        f"{where}: overtook {earlier.name} in group {unit.group} "
                        f"(its runs: {[(r.attempt, r.outcome) for r in earlier.current_runs()]})"
                    )

    def on_leased(self, key: str, deliveries: Sequence[Delivery], called: int) -> None:
        if key == ON_FAILED.key:
            return
        for delivery in deliveries:
            unit = self._unit_of(key.split("@", 1)[0], delivery.envelope.data)
            unit.last_lease = (unit.gen, delivery.attempt)
        if key != PRIO.key:
            return
        now = trio.current_time()
        for delivery in deliveries:
            unit = self._unit_of(PRIO.step, delivery.envelope.data)
            for other in self.units.values():
                if other.sub is not PRIO or other is unit or other.verdict() != "pending":
                    continue
                if other.priority <= unit.priority:
                    continue
                fresh = 0 < other.published < called and (other.n, other.gen) not in self.leased
                due = self.retried.get((other.sub.step, other.n))
                ready_retry = due is not None and due[1] < called and due[0] < now - 1e-6
                if fresh or ready_retry:
                    self.violation(
                        f"priority: leased {unit.name} (priority {unit.priority}) while "
                        f"{other.name} (priority {other.priority}) was ready"
                    )
            self.leased.add((unit.n, unit.gen))
            self.retried.pop((PRIO.step, unit.n), None)

    def on_buried(self, delivery: Delivery) -> None:
        unit = self._unit_of(delivery.subscription.split("@", 1)[0], delivery.envelope.data)
        unit.buried.add(unit.gen)

    def on_retried(self, delivery: Delivery, delay: float) -> None:
        if delivery.subscription == PRIO.key:
            unit = self._unit_of(PRIO.step, delivery.envelope.data)
            self.retried[(PRIO.step, unit.n)] = (trio.current_time() + delay, self.tick())

    # -- driving (each runs on the runtime's thread, through `call`) ---------------------

    def new_unit(self, sub: Sub, n: int, behavior: Behavior, **fields: Any) -> Unit:
        unit = Unit(sub, n, [behavior], **fields)
        self.units[(sub.step, n)] = unit
        if sub is FIFO and unit.group is not None:
            self.group_order.setdefault(unit.group, []).append((unit, 0))
        return unit

    async def emit(
        self, topic: str, batch: Sequence[tuple[Any, list[Unit], dict[str, Any]]]
    ) -> None:
        """Publish each (data, units, options) in turn, then wait for quiet."""
        for data, units, options in batch:
            message_id = await self.runtime.emit(topic, data, trace_id=new_id(), **options)
            event = self.tick()
            for unit in units:
                unit.published, unit.message_id = event, message_id
        await quiesce()

    async def write_state(self, key: str, value: Any, unit: Unit) -> None:
        await self.state.set(NAMESPACE, key, value)
        unit.published = self.tick()
        await quiesce()

    async def delete_state(self, key: str, unit: Unit) -> None:
        await self.state.delete(NAMESPACE, key)
        unit.published = self.tick()
        await quiesce()

    async def crash(self, step: str) -> None:
        self.crashing.add(step)
        self.crashes += 1
        self._crash_events[step].set()
        await quiesce()
        self.crashing.discard(step)

    async def advance(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, one trio deadline at a time."""
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, MockClock)
        target = trio.current_time() + seconds
        while True:
            await quiesce()
            left = target - trio.current_time()
            if left <= 0:
                return
            step = trio.lowlevel.current_statistics().seconds_to_next_deadline
            clock.jump(min(max(step, 1e-9), left))

    async def settle(self, limit: float = 3600.0) -> None:
        """Let time pass until nothing is queued, leased, delayed or running."""
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, MockClock)
        deadline = trio.current_time() + limit
        while True:
            await quiesce()
            if await self._idle():
                return
            step = trio.lowlevel.current_statistics().seconds_to_next_deadline
            if trio.current_time() + step > deadline:
                depth = await self.runtime.backend.depth()
                raise AssertionError(f"the runtime never settled: {depth}")
            clock.jump(max(step, 1e-9))

    async def _idle(self) -> bool:
        runtime = self.runtime
        assert runtime.dispatcher is not None
        if runtime.dispatcher.in_flight or any(a.pending_acks() for a in runtime.actors):
            return False
        depth = await runtime.backend.depth()
        return all(d.pending == 0 for d in depth.values())

    async def dead_letters(self) -> list[DeadLetter]:
        return list(await self.runtime.backend.dead_letters(None, limit=1_000_000))

    async def redrive(self, ids: list[str]) -> int:
        count = await self.runtime.backend.redrive(ids)
        await quiesce()
        return count

    async def discard(self, ids: list[str]) -> int:
        count = await self.runtime.backend.discard(ids)
        await quiesce()
        return count

    def unit_of_letter(self, letter: DeadLetter) -> Unit | None:
        step = letter.subscription.split("@", 1)[0]
        try:
            return self._unit_of(step, letter.envelope.data)
        except (KeyError, TypeError, AttributeError):
            return None


# -- the model's checks ------------------------------------------------------------------


def expected_error(unit: Unit) -> str:
    """A fragment the dead letter's error must contain, by how the last attempt ended."""
    if unit.condition == "raise":
        return "NoneType" if unit.n < 0 else "condition broke"
    runs = unit.current_runs()
    last = runs[-1].outcome if runs else ""
    if last == "fail":
        return f"failed on attempt {runs[-1].attempt}"
    if last == "timeout":
        return "HandlerTimeout"
    if last == "nonretryable":
        return "refused"
    return ""  # abandoned after lost leases: the runtime's own words


async def check_now(world: World, *, settled: bool) -> None:
    """The invariants, at a quiet moment. `settled`: nothing is left to run or come due."""
    assert not world.violations, "\n".join(world.violations)
    letters = await world.dead_letters()
    by_unit: dict[tuple[str, int], DeadLetter] = {}
    for letter in letters:
        unit = world.unit_of_letter(letter)
        assert unit is not None, f"a dead letter of no message: {letter}"
        key = (unit.sub.step, unit.n)
        assert key not in by_unit, f"{unit.name} is dead-lettered twice: {letter}"
        by_unit[key] = letter
        if unit.sub is not WATCH:  # the same message, through retries and redrives
            assert letter.envelope.id == unit.message_id, f"{unit.name}: {letter}"
            assert letter.envelope.data == {"n": unit.n}, f"{unit.name}: {letter}"
    if settled:
        # Listing one subscription's dead letters, and the depth's dead counts, agree.
        depth = await world.runtime.backend.depth()
        for sub in SUBS:
            own = [d.id for d in letters if d.subscription == sub.key]
            listed = await world.runtime.backend.dead_letters(sub.key, limit=1_000_000)
            assert [d.id for d in listed] == own, f"{sub.key}: {listed} != {own}"
            assert depth[sub.key].dead == len(own), f"{sub.key}: {depth[sub.key]}"
    for key, unit in world.units.items():
        verdict = unit.verdict()
        letter = by_unit.get(key)
        runs = unit.current_runs()
        where = (
            f"{unit.name} gen {unit.gen} ({verdict}, runs {[(r.attempt, r.outcome) for r in runs]})"
        )
        for run in unit.runs:
            assert run.attempt <= unit.sub.max_attempts, where
        if settled:
            assert verdict in ("handled", "filtered", "dead"), f"{where}: never finished"
            assert all(r.outcome != "running" for r in runs), where
        if verdict in ("handled", "filtered", "pending"):
            assert letter is None, f"{where}: has a dead letter {letter}"
        elif verdict == "dead" and unit.discarded:
            assert letter is None, f"{where}: discarded, still listed"
        elif verdict == "dead":  # always in the store, a dead_letter_queue topic or not
            assert letter is not None, f"{where}: dead, not in dead_letters()"
            assert expected_error(unit) in letter.error, f"{where}: error {letter.error!r}"
            if runs and runs[-1].outcome == "fail":
                # The last attempt's traceback, with the user's frame in it.
                assert letter.traceback and Path(__file__).name in letter.traceback, (
                    f"{where}: {letter}"
                )
                assert "Boom" in letter.traceback, f"{where}: {letter.traceback}"
            if (
                runs
                and unit.condition is None
                and verdict == "dead"
                and (runs[-1].outcome not in LOST)
            ):
                assert letter.attempts == runs[-1].attempt, f"{where}: {letter}"
            assert letter.attempts <= unit.sub.max_attempts, where
        if settled and unit.sub.dead_letter_queue:
            dead_gens = unit.gen + (1 if verdict == "dead" else 0)
            assert unit.dlq_published == dead_gens, f"{where}: {unit.dlq_published} on the topic"


# -- the state machine -------------------------------------------------------------------

GROUPS = ["g1", "g2", "g3"]
PRIORITIES = [0, 1, 5]
ACTOR_STEPS = [s.step for s in SUBS]
PICKS = st.lists(st.integers(0, 15), min_size=1, max_size=3)  # dead letters, by index
EXAMPLES: dict[str, int] = {"memory": 0, "sqlite": 0}  # examples run, for the summary line
TALLY: collections.Counter[str] = collections.Counter()  # what the examples reached


def behaviors() -> st.SearchStrategy[Behavior]:
    modes: list[st.SearchStrategy[Behavior]] = [
        st.just(Behavior("ok")),
        st.just(Behavior("slow")),
        st.builds(Behavior, st.just("transient"), st.integers(1, 3)),
        st.just(Behavior("permanent")),
        st.builds(Behavior, st.just("timeout"), st.integers(1, 3)),
        st.just(Behavior("nonretryable")),
    ]
    return st.one_of(modes)


def conditions() -> st.SearchStrategy[str]:
    return st.sampled_from(["pass", "skip", "raise"])


class RuntimeModel(RuleBasedStateMachine):
    backend: ClassVar[Backend] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.world = World(self.backend)
        self.ok = True  # no rule failed: teardown may check the end state
        EXAMPLES[self.backend] += 1

    def _do(self, fn: Callable[[], Awaitable[T]]) -> T:
        self.ok = False
        result = self.world.call(fn)
        self.ok = True
        return result

    def teardown(self) -> None:
        try:
            if self.ok:
                self.ok = False
                self.world.call(self._final)
        finally:
            self.world.close()

    async def _final(self) -> None:
        world = self.world
        await world.settle()
        await check_now(world, settled=True)
        TALLY["crashes"] += world.crashes
        TALLY["restarts"] += world.restarts
        for unit in world.units.values():
            TALLY[f"{unit.sub.step} {unit.verdict()}"] += 1
            TALLY["generations"] += unit.gen + 1
            TALLY["units"] += 1
            for run in unit.runs:
                TALLY[f"run {run.outcome}"] += 1
            if unit.gen in unit.buried and unit.runs and unit.runs[-1].outcome in LOST:
                TALLY["abandoned after crashes"] += 1

    @invariant()
    def holds(self) -> None:
        self._do(lambda: check_now(self.world, settled=False))

    # -- emitting ------------------------------------------------------------------------

    @rule(a=behaviors(), b=behaviors())
    def emit_fan_out(self, a: Behavior, b: Behavior) -> None:
        world = self.world
        n = next(world.numbers)
        units = [world.new_unit(FAN_A, n, a), world.new_unit(FAN_B, n, b)]
        self._do(lambda: world.emit("fan", [({"n": n}, units, {})]))

    @rule(batch=st.lists(st.tuples(st.sampled_from(GROUPS), behaviors()), min_size=1, max_size=4))
    def emit_fifo(self, batch: list[tuple[str, Behavior]]) -> None:
        world = self.world
        messages = []
        for group, behavior in batch:
            n = next(world.numbers)
            unit = world.new_unit(FIFO, n, behavior, group=group)
            messages.append(({"n": n}, [unit], {"group": group}))
        self._do(lambda: world.emit("fifo", messages))

    @rule(
        batch=st.lists(st.tuples(st.sampled_from(PRIORITIES), behaviors()), min_size=1, max_size=4)
    )
    def emit_priority(self, batch: list[tuple[int, Behavior]]) -> None:
        world = self.world
        messages = []
        for priority, behavior in batch:
            n = next(world.numbers)
            unit = world.new_unit(PRIO, n, behavior, priority=priority)
            messages.append(({"n": n}, [unit], {"priority": priority}))
        self._do(lambda: world.emit("prio", messages))

    @rule(condition=conditions(), behavior=behaviors())
    def write_state(self, condition: str, behavior: Behavior) -> None:
        world = self.world
        n = next(world.numbers)
        unit = world.new_unit(WATCH, n, behavior, condition=condition)
        key = f"doc-{n}"
        world.state_keys.append((key, n))
        self._do(lambda: world.write_state(key, {"n": n}, unit))

    @precondition(lambda self: self.world.state_keys)
    @rule(data=st.data())
    def delete_state(self, data: st.DataObject) -> None:
        """A delete fires the trigger with value None; the condition reads the value and
        raises: a failed attempt each time, then a dead letter."""
        world = self.world
        key, n = data.draw(st.sampled_from(world.state_keys), label="key")
        world.state_keys.remove((key, n))
        unit = world.new_unit(WATCH, -n, Behavior("ok"), condition="raise")
        self._do(lambda: world.delete_state(key, unit))

    # -- time and faults -----------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 31.0]))
    def advance(self, seconds: float) -> None:
        self._do(lambda: self.world.advance(seconds))

    @rule(step=st.sampled_from(ACTOR_STEPS))
    def crash_actor(self, step: str) -> None:
        """The step's actor raises (a bug, not a handler error): handlers it was running are
        cancelled and their deliveries come back after their lease; the supervisor restarts
        the actor, which keeps what it had buffered."""
        self._do(lambda: self.world.crash(step))

    def _busy_steps(self) -> list[str]:
        units = self.world.units.values()
        return sorted({u.sub.step for u in units for r in u.runs if r.outcome == "running"})

    @rule(pick=st.integers(0, 7))
    def crash_busy_actor(self, pick: int) -> None:
        """As crash_actor, aimed at an actor with a handler running (sleeping), if any."""
        busy = self._busy_steps()
        if busy:
            step = busy[pick % len(busy)]
            self._do(lambda: self.world.crash(step))

    @precondition(lambda self: self.backend == "sqlite")
    @rule()
    def restart_runtime(self) -> None:
        """The whole runtime stops at once and a new one opens the same file: what was
        acked stays acked, what was running comes back after its lease, retries keep their
        due times, dead letters stay listed."""
        self._do(self.world.restart)

    @rule()
    def settle(self) -> None:
        async def settle_and_check() -> None:
            await self.world.settle()
            await check_now(self.world, settled=True)

        self._do(settle_and_check)

    # -- dead letters --------------------------------------------------------------------

    def _pick_letters(self, picks: list[int]) -> list[DeadLetter]:
        """Dead letters chosen by index from the listing in a fixed order.

        What the runtime does can vary between runs of the same rules (SQLite's worker
        threads finish in any order, trio shuffles its run queue), so nothing Hypothesis
        draws may depend on it: the indices are drawn, the letters are looked up."""
        world = self.world
        letters = self._do(world.dead_letters)

        def order(letter: DeadLetter) -> tuple[str, int]:
            unit = world.unit_of_letter(letter)
            return (unit.sub.step, unit.n) if unit else ("", 0)

        letters.sort(key=order)
        if not letters:
            return []
        return list(
            {letters[i % len(letters)].id: letters[i % len(letters)] for i in picks}.values()
        )

    @rule(picks=PICKS, fix=st.booleans())
    def redrive(self, picks: list[int], fix: bool) -> None:
        """Re-drive some dead letters, after fixing what made them fail or not. Each runs
        again from attempt 1 (a fifo one behind what its group has queued since)."""
        world = self.world
        chosen = self._pick_letters(picks)
        if not chosen:
            return
        for letter in chosen:
            unit = world.unit_of_letter(letter)
            assert unit is not None
            unit.behaviors.append(Behavior("ok") if fix else unit.behaviors[-1])
            unit.condition_calls.append(0)
            if fix and unit.condition == "raise" and unit.n > 0:
                unit.condition = "pass"
            if unit.sub is FIFO and unit.group is not None:
                world.group_order[unit.group].append((unit, unit.gen))

        async def redrive() -> None:
            ids = [d.id for d in chosen]
            count = await world.runtime.backend.redrive(ids)
            assert count == len(chosen), f"redrove {count} of {len(chosen)}"
            assert await world.runtime.backend.redrive(ids) == 0, "redrove the same twice"
            event = world.tick()
            for letter in chosen:
                unit = world.unit_of_letter(letter)
                assert unit is not None
                unit.published = event
            await quiesce()

        self._do(redrive)

    @rule(picks=PICKS)
    def discard(self, picks: list[int]) -> None:
        world = self.world
        chosen = self._pick_letters(picks)
        if not chosen:
            return
        for letter in chosen:
            unit = world.unit_of_letter(letter)
            assert unit is not None
            unit.discarded = True

        async def discard() -> None:
            ids = [d.id for d in chosen]
            count = await world.runtime.backend.discard(ids)
            assert count == len(chosen), f"discarded {count} of {len(chosen)}"
            assert await world.runtime.backend.discard(ids) == 0, "discarded the same twice"
            await quiesce()

        self._do(discard)


class MemoryModel(RuntimeModel):
    backend = "memory"


class SqliteModel(RuntimeModel):
    backend = "sqlite"


MACHINES: dict[str, type[RuntimeModel]] = {"memory": MemoryModel, "sqlite": SqliteModel}


def run_model(backend: Backend, examples: int, *, derandomize: bool, steps: int = 30) -> None:
    """Run `examples` examples of the model on `backend` (the tests and bench/soak_model.py)."""
    with counting_threads():
        run_state_machine_as_test(
            MACHINES[backend],
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                derandomize=derandomize,
                database=None,
                print_blob=True,
                suppress_health_check=list(HealthCheck),
            ),
        )


def summary() -> str:
    """One line: the examples run per backend and what they reached."""
    ran = ", ".join(f"{count} examples on {name}" for name, count in EXAMPLES.items() if count)
    handled = sum(v for k, v in TALLY.items() if k.endswith((" handled", " filtered")))
    dead = sum(v for k, v in TALLY.items() if k.endswith(" dead"))
    return (
        f"runtime model: {ran}; {TALLY['units']} message copies ended: {handled} handled, "
        f"{dead} dead-lettered ({TALLY['generations'] - TALLY['units']} redriven on the way); "
        f"{TALLY['crashes']} actor crashes and {TALLY['restarts']} runtime restarts, "
        f"{TALLY['run crashed']} handler runs lost to them"
    )


# Examples per CI run: enough rules to reach every path (a redrive needs a dead letter first)
# while the whole file stays well under a minute of CPU time.
MEMORY_EXAMPLES = 400
SQLITE_EXAMPLES = 100


def test_the_runtime_keeps_its_promises_on_memory() -> None:
    run_model("memory", MEMORY_EXAMPLES, derandomize=True)


def test_the_runtime_keeps_its_promises_on_sqlite() -> None:
    run_model("sqlite", SQLITE_EXAMPLES, derandomize=True)
