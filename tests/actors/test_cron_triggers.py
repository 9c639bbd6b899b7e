"""Several cron triggers on one step: each is its own schedule (tick id, topic, claim, skip),
`ctx.trigger` is the trigger that fired, and coinciding ticks are separate runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from motet import StepDefinitionError, cron, queue
from motet._envelope import cron_topic
from motet._runtime import Runtime
from motet.actors._clock_actor import CronJob, run_cron, schedule_name, tick_id
from motet.backends import MemoryBackend
from motet.steps import load_step
from motet.steps._cron import parse_cron
from motet.testing import open_test_runtime


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


async def test_each_trigger_runs_with_its_own_trigger_and_coinciding_ticks_run_twice(
    autojump_clock: Any,
) -> None:
    runs: list[tuple[str, datetime]] = []

    async def handler(ctx: Any) -> None:
        runs.append((ctx.trigger.expression, ctx.now()))

    step = load_step(
        {"name": "Report", "triggers": [cron("0 */6 * * *"), cron("0 8,12 * * *")]}, handler
    )
    async with open_test_runtime([step], start=utc(2026, 1, 1, 0, 30)) as app:
        await app.advance(timedelta(hours=23))
        await app.settle(fail_fast=True)
    six_hourly = [t.hour for e, t in runs if e == "0 */6 * * *"]
    twice_a_day = [t.hour for e, t in runs if e == "0 8,12 * * *"]
    assert six_hourly == [6, 12, 18]
    assert twice_a_day == [8, 12]  # 12:00 is also a six-hourly tick: two runs, not one
    assert len(runs) == 5


async def test_schedule_names_topics_and_tick_ids(autojump_clock: Any) -> None:
    ticks: list[tuple[str, str, str, Any]] = []

    async def handler(input: Any, ctx: Any) -> None:
        assert input is None  # Motia's: the tick is on ctx
        ticks.append((ctx.step.name, ctx.message.topic, ctx.message.id, ctx.tick))

    steps = [
        load_step({"name": "Once", "triggers": [cron("0 8 * * *")]}, handler),
        load_step({"name": "Twice", "triggers": [cron("0 8 * * *"), cron("0 8 * * *")]}, handler),
    ]
    async with open_test_runtime(steps, start=utc(2026, 1, 1)) as app:
        await app.advance(timedelta(hours=9))
        await app.settle(fail_fast=True)
        last_first = await app.runtime.backend.last_tick("Twice")
        last_second = await app.runtime.backend.last_tick("Twice#2")
        keys = sorted(s.key for s in app.runtime.subscriptions)
    eight = utc(2026, 1, 1, 8).timestamp()
    scheduled = {"scheduled": "2026-01-01T08:00:00Z"}
    # A step's only (or first) cron trigger keeps the names it always had, so data stored
    # by earlier versions (last_tick, queued ticks) still matches.
    assert sorted(ticks) == [
        ("Once", cron_topic("Once"), "Once@2026-01-01T08:00:00Z", {"step": "Once", **scheduled}),
        ("Twice", cron_topic("Twice"), tick_id("Twice", eight), {"step": "Twice", **scheduled}),
        ("Twice", "cron:Twice#2", "Twice#2@2026-01-01T08:00:00Z", {"step": "Twice", **scheduled}),
    ]
    assert last_first == last_second == eight
    assert keys == ["Once@cron:Once", "Twice@cron:Twice", "Twice@cron:Twice#2"]
    assert [schedule_name("S", i) for i in range(3)] == ["S", "S#2", "S#3"]


async def test_a_long_run_of_one_schedule_does_not_skip_another(autojump_clock: Any) -> None:
    runs: list[tuple[str, datetime]] = []

    async def handler(ctx: Any) -> None:
        runs.append((ctx.trigger.expression, ctx.now()))
        if ctx.trigger.expression == "* * * * *" and len(runs) == 1:
            await trio.sleep(150)  # still running at 08:00, 08:01

    step = load_step({"name": "S", "triggers": [cron("* * * * *"), cron("0 8 * * *")]}, handler)
    async with open_test_runtime([step], start=utc(2026, 1, 1, 7, 59)) as app:
        await app.advance(timedelta(minutes=4, seconds=30))
        await app.settle(fail_fast=True)
        skipped = [r for r in app.logs if r.message.startswith("cron tick skipped")]
    minutes = [t.strftime("%H:%M") for e, t in runs if e == "* * * * *"]
    assert ("0 8 * * *", utc(2026, 1, 1, 8)) in runs  # the daily one ran while the other ran
    assert minutes == ["07:59", "08:02", "08:03"]  # 08:00 and 08:01 were skipped
    assert [r.fields["scheduled"] for r in skipped] == [
        utc(2026, 1, 1, 8).timestamp(),
        utc(2026, 1, 1, 8, 1).timestamp(),
    ]
    assert all(r.step == "S" and r.fields["expression"] == "* * * * *" for r in skipped)


async def test_a_missed_tick_of_a_second_schedule_fires_on_start(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    runs: list[str] = []

    async def handler(ctx: Any) -> None:
        runs.append(ctx.trigger.expression)

    step = load_step({"name": "S", "triggers": [cron("0 8 * * *"), cron("0 9 * * *")]}, handler)
    # Down from 08:59 to 09:00:30: the 09:00 tick of the second schedule fires once on start,
    # within the 60 s grace, and nothing of the first schedule (its 08:00 tick is old).
    async with open_test_runtime([step], start=utc(2026, 1, 1, 9, 0, 30), backend=backend) as app:
        await app.settle(fail_fast=True)
        assert await backend.last_tick("S#2") == utc(2026, 1, 1, 9).timestamp()
        assert await backend.last_tick("S") is None
    assert runs == ["0 9 * * *"]


def test_a_step_name_that_collides_with_a_schedule_name_is_refused() -> None:
    async def handler(ctx: Any) -> None:
        pass

    steps = [
        load_step({"name": "Report", "triggers": [cron("0 8 * * *"), cron("0 9 * * *")]}, handler),
        load_step({"name": "Report#2", "triggers": [cron("0 10 * * *")]}, handler),
    ]
    with pytest.raises(StepDefinitionError, match="'Report#2' is used by steps 'Report'"):
        Runtime(steps, backend=MemoryBackend())


async def test_queue_and_cron_triggers_of_one_step_each_get_their_own_trigger(
    autojump_clock: Any,
) -> None:
    seen: list[str] = []

    async def handler(_input: Any, ctx: Any) -> None:
        seen.append(ctx.trigger.type)

    step = load_step({"name": "Both", "triggers": [queue("jobs"), cron("0 8 * * *")]}, handler)
    async with open_test_runtime([step], start=utc(2026, 1, 1, 7)) as app:
        await app.emit("jobs", {"n": 1})
        await app.advance(timedelta(hours=1))
        await app.settle(fail_fast=True)
    assert sorted(seen) == ["cron", "queue"]


async def test_the_clock_actor_claims_each_schedule_separately(autojump_clock: Any) -> None:
    from motet._clock import WallClock

    clock = WallClock(utc(2026, 1, 1, 7, 59))
    backend = MemoryBackend()
    jobs = [
        CronJob("S", parse_cron("0 8 * * *")),
        CronJob("S", parse_cron("0 * * * *"), name="S#2"),
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await nursery.start(
            lambda task_status: run_cron(
                jobs,
                clock=clock,
                backend=backend,
                is_running=lambda name: False,
                task_status=task_status,
            )
        )
        await clock.sleep_until(utc(2026, 1, 1, 8, 0, 1).timestamp())
        eight = utc(2026, 1, 1, 8).timestamp()
        assert await backend.last_tick("S") == eight
        assert await backend.last_tick("S#2") == eight
        nursery.cancel_scope.cancel()


async def test_the_operator_lists_each_schedule_with_its_own_last_tick(
    autojump_clock: Any,
) -> None:
    from tests.observe._app import open_observed

    async def handler(ctx: Any) -> None:
        pass

    step = load_step({"name": "S", "triggers": [cron("0 * * * *"), cron("0 8 * * *")]}, handler)
    async with open_observed([step]) as app:
        await app.runtime.clock.sleep_until(utc(2026, 1, 1, 9, 30).timestamp())
        await app.settle()
        listed = (await app.http.get("/_motet/cron")).json()["cron"]
    assert [(c["step"], c["schedule"], c["expression"]) for c in listed] == [
        ("S", "S", "0 * * * *"),
        ("S", "S#2", "0 8 * * *"),
    ]
    assert [c["last_iso"] for c in listed] == [
        "2026-01-01T09:00:00.000+00:00",
        "2026-01-01T08:00:00.000+00:00",
    ]
    assert [c["running"] for c in listed] == [False, False]
