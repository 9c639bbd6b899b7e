"""One seam for observers: `Observer`'s hooks are optional no-ops, passed as
`Runtime(observers=[...])` and fanned out once; an observer reads the runtime through a
read-only view, never the Runtime itself."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from motet import Observer, Runtime, RuntimeOptions, queue
from motet._observer import HOOKS, Observers
from motet._runtime import running
from motet.actors._dispatcher import HandlerRun
from motet.backends import MemoryBackend
from motet.steps import load_step


class Journal(Observer):
    """Every event, by hook, in the order seen."""

    def __init__(self, name: str, shared: list[str]) -> None:
        self.name = name
        self.shared = shared
        self.view: Any = None
        self.events: dict[str, list[Any]] = {hook: [] for hook in HOOKS}

    def on_start(self, runtime: Any) -> None:
        self.view = runtime
        self.events["on_start"].append(runtime)

    def on_envelope(self, envelope: Any, source: str | None) -> None:
        self.events["on_envelope"].append((envelope.topic, source))

    def on_run(self, run: HandlerRun) -> None:
        self.shared.append(f"{self.name} {run.step} {run.outcome}")
        self.events["on_run"].append(run)

    def on_state(self, change: Any) -> None:
        self.events["on_state"].append((change.namespace, change.key, change.event))

    def on_log(self, record: Any) -> None:
        self.events["on_log"].append(record.message)

    def on_settled(self) -> None:
        self.events["on_settled"].append(None)

    def on_failure(self, failure: Any) -> None:
        self.events["on_failure"].append(failure)


class OnlyRuns(Observer):
    def __init__(self) -> None:
        self.runs: list[HandlerRun] = []

    def on_run(self, run: HandlerRun) -> None:
        self.runs.append(run)


def steps() -> list[Any]:
    async def save(data: Any, ctx: Any) -> None:
        await ctx.state.set("saved", data["id"], data)
        await ctx.emit("saved", data)
        ctx.logger.info("saved it")

    async def fail(data: Any, ctx: Any) -> None:
        raise ValueError("no")

    return [
        load_step({"name": "Save", "triggers": [queue("in")], "enqueues": ["saved"]}, save),
        load_step({"name": "Fail", "triggers": [queue("saved", max_retries=0)]}, fail),
    ]


async def until(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


async def test_every_event_reaches_every_observer_once_in_order(autojump_clock: Any) -> None:
    shared: list[str] = []
    first, second, runs_only = Journal("first", shared), Journal("second", shared), OnlyRuns()
    runtime = Runtime(
        steps(),
        backend=MemoryBackend(),
        observers=[first, second, runs_only],
        options=RuntimeOptions(log_sink=False, retry_jitter=0.0),
    )
    async with running(runtime):
        await runtime.emit("in", {"id": "a"})
        await until(lambda: len(first.events["on_failure"]) == 1)
        await until(lambda: len(first.events["on_settled"]) == 2)
    assert shared == ["first Save ok", "second Save ok", "first Fail error", "second Fail error"]
    for journal in (first, second):
        events = journal.events
        assert events["on_envelope"] == [("in", None), ("saved", "Save")]
        assert events["on_state"] == [("saved", "a", "created")]
        assert "saved it" in events["on_log"] and "motet runtime started" in events["on_log"]
        assert [type(f.original) for f in events["on_failure"]] == [ValueError]
        assert events["on_http"] == []
    assert [r.step for r in runs_only.runs] == ["Save", "Fail"]


async def test_an_observer_sees_a_read_only_view_not_the_runtime(autojump_clock: Any) -> None:
    journal = Journal("j", [])
    runtime = Runtime(
        steps(),
        backend=MemoryBackend(),
        observers=[journal],
        options=RuntimeOptions(log_sink=False),
    )
    async with running(runtime):
        view = journal.view
        assert view is not runtime and not isinstance(view, Runtime)
        assert [s.name for s in view.steps] == ["Save", "Fail"]
        assert [s.topic for s in view.subscriptions] == ["in", "saved"]
        assert view.backend is runtime.backend and view.clock is runtime.clock
        assert view.cron_jobs == () and view.running() == {} and list(view.urls) == []
        view.logger(step="Save").info("from an observer")
        for power in ("emit", "stop", "dispatcher", "publisher", "hub", "actors", "observer"):
            assert not hasattr(view, power), power
    assert "from an observer" in journal.events["on_log"]


def test_hooks_nobody_overrides_are_not_watched() -> None:
    fan = Observers([OnlyRuns(), Observer()])
    assert fan.watches("on_run") and fan.hook("on_run") is not None
    assert [hook for hook in HOOKS if fan.watches(hook)] == ["on_run"]
    assert fan.hook("on_envelope") is None and fan.hook("on_state") is None
    fan.on_log(object())  # type: ignore[arg-type]  # unwatched hooks stay no-ops
    assert Observers([]).hook("on_run") is None


async def test_without_observers_a_handler_call_is_not_timed(autojump_clock: Any) -> None:
    runtime = Runtime(steps(), backend=MemoryBackend(), options=RuntimeOptions(log_sink=False))
    async with running(runtime):
        assert runtime.dispatcher is not None and runtime.publisher is not None
        # Nobody watches runs, envelopes or state writes: nothing is built for them.
        assert runtime.dispatcher._on_run is None and runtime.dispatcher._on_state is None
        assert runtime.publisher._on_envelope is None
        assert not hasattr(runtime.dispatcher, "observers")
        assert not hasattr(runtime.dispatcher, "state_observers")
        assert not hasattr(runtime.publisher, "observers")


@pytest.mark.parametrize("name", ["observers", "failure_hooks", "settled_hooks", "failures"])
def test_the_mutable_hook_lists_are_gone(name: str) -> None:
    runtime = Runtime(steps(), backend=MemoryBackend())
    assert not hasattr(runtime, name)
