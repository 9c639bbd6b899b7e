"""The runtime composed over a pure plan: `plan(steps, project)` runs nothing, and the parts
above the actors (the gateway, telemetry) start after the actors, in order, drain in reverse
before running handlers drain, and are cancelled innermost first before the actors stop."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from motet import cron, queue, state
from motet._errors import StepDefinitionError
from motet._plan import CRON_DEFAULTS, plan
from motet._runtime import Runtime, RuntimeOptions, running
from motet.backends import MemoryBackend
from motet.project import ProjectConfig
from motet.steps import QueueOverrides, load_step


async def nothing(data: Any, ctx: Any) -> None:
    return None


def steps() -> list[Any]:
    return [
        load_step({"name": "Work", "triggers": [queue("jobs"), state("orders")]}, nothing),
        load_step(
            {
                "name": "Report",
                "triggers": [cron("0 9 * * *"), cron("0 18 * * *", timezone="Asia/Tokyo")],
            },
            nothing,
        ),
    ]


def test_plan_gives_subscriptions_actors_and_cron_jobs_without_running_anything() -> None:
    project = ProjectConfig(
        timezone="Europe/Paris", cron_grace=5.0, queues={"jobs": QueueOverrides(max_retries=9)}
    )
    planned = plan(steps(), project)
    assert [s.topic for s in planned.subscriptions] == [
        "jobs",
        "state:orders",
        "cron:Report",
        "cron:Report#2",
    ]
    assert planned.subscriptions[0].options.max_retries == 9  # the project's [queues."jobs"]
    assert planned.subscriptions[2].options == CRON_DEFAULTS
    assert [(a.step.name, a.subscription.topic) for a in planned.actors] == [
        ("Work", "jobs"),
        ("Work", "state:orders"),
        ("Report", "cron:Report"),
        ("Report", "cron:Report#2"),
    ]
    first, second = planned.cron_jobs
    assert (first.name, first.schedule.timezone, first.grace) == ("Report", "Europe/Paris", 5.0)
    assert (second.name, second.schedule.timezone) == ("Report#2", "Asia/Tokyo")
    # The runtime runs exactly this plan.
    runtime = Runtime(steps(), backend=MemoryBackend(), project=project)
    assert runtime.plan == planned and runtime.subscriptions == list(planned.subscriptions)


def test_plan_raises_the_users_error_before_anything_runs() -> None:
    clash = [
        load_step({"name": "R", "triggers": [cron("* * * * *"), cron("0 * * * *")]}, nothing),
        load_step({"name": "R#2", "triggers": [cron("* * * * *")]}, nothing),
    ]
    with pytest.raises(StepDefinitionError, match="'R#2' is used by steps"):
        plan(clash)


class Recorder:
    """A part that writes down what the runtime did to it, and when."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def run(self, runtime: Runtime, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        assert runtime.supervisor is not None and len(runtime.actors) == 2  # actors first
        self.journal.append(f"start {self.name}")
        task_status.started([f"http://{self.name}"])
        try:
            await trio.sleep_forever()
        finally:
            self.journal.append(f"cancelled {self.name}")

    async def drain(self) -> None:
        self.journal.append(f"drain {self.name}")


async def test_parts_start_after_the_actors_drain_in_reverse_and_stop_before_them(
    autojump_clock: Any,
) -> None:
    journal: list[str] = []
    finished = trio.Event()

    async def slow(data: Any, ctx: Any) -> None:
        journal.append("handler running")
        await trio.sleep(1)
        journal.append("handler done")
        finished.set()

    work = load_step({"name": "Slow", "triggers": [queue("jobs"), queue("other")]}, slow)
    parts = [Recorder("outer", journal), Recorder("inner", journal)]
    runtime = Runtime(
        [work], backend=MemoryBackend(), parts=parts, options=RuntimeOptions(log_sink=False)
    )
    async with running(runtime):
        assert runtime.gateway_urls == ["http://outer", "http://inner"]
        await runtime.emit("jobs", {})
        while "handler running" not in journal:
            await trio.sleep(0.01)
    assert journal == [
        "start outer",
        "start inner",
        "handler running",
        "drain inner",
        "drain outer",
        "handler done",  # running handlers drain after the parts did
        "cancelled inner",
        "cancelled outer",
    ]
    assert finished.is_set()
