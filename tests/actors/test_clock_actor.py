"""The clock actor on trio's MockClock, over the memory backend."""

from __future__ import annotations

import functools
import io
import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import attrs
import pytest
import trio
import trio.testing

from motet._clock import WallClock
from motet._envelope import Envelope, Subscription, cron_topic
from motet._errors import BackendUnavailable
from motet._logging import LogHub, stream_sink
from motet.actors._clock_actor import CronJob, run_cron, scheduled_iso, tick_id
from motet.backends._memory import MemoryBackend
from motet.steps._cron import parse_cron


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def ts(*parts: int) -> float:
    return utc(*parts).timestamp()


class Recorder:
    """The memory backend, with every claim attempt and the tick each won claim published
    written down."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.claims: list[tuple[str, float, bool]] = []
        self.published: list[Envelope] = []

    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        won = await self.inner.claim_tick(step, scheduled, tick)
        self.claims.append((step, scheduled, won))
        if won and tick is not None:
            self.published.append(tick)
        return won

    async def last_tick(self, step: str) -> float | None:
        return await self.inner.last_tick(step)

    def fired(self, step: str | None = None) -> list[str]:
        return [
            e.data["scheduled"] for e in self.published if step is None or e.data["step"] == step
        ]


def never_running(step: str) -> bool:
    return False


async def start(
    nursery: trio.Nursery,
    clock: WallClock,
    jobs: Sequence[CronJob],
    backend: MemoryBackend | None = None,
    *,
    is_running: Callable[[str], bool] = never_running,
    on_skip: Callable[[str, float], object] | None = None,
) -> Recorder:
    """Start a backend (unless one is shared) and a clock actor over it."""
    if backend is None:
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
    recorder = Recorder(backend)
    await nursery.start(
        functools.partial(
            run_cron,
            jobs,
            clock=clock,
            backend=recorder,
            is_running=is_running,
            on_skip=on_skip,
        )
    )
    return recorder


def job(step: str, expression: str, tz: str | None = None, **options: object) -> CronJob:
    return CronJob(step, parse_cron(expression, tz), **options)  # type: ignore[arg-type]


async def test_a_month_of_daily_0800_fires_31_times(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *")])
        await clock.sleep_until(ts(2026, 2, 1))
        nursery.cancel_scope.cancel()
    assert rec.fired() == [f"2026-01-{d:02d}T08:00:00Z" for d in range(1, 32)]
    first = rec.published[0]
    assert first.topic == cron_topic("daily")
    assert first.id == "daily@2026-01-01T08:00:00Z" == tick_id("daily", ts(2026, 1, 1, 8))
    assert first.data == {"step": "daily", "scheduled": "2026-01-01T08:00:00Z"}
    assert first.created_at == pytest.approx(ts(2026, 1, 1, 8))
    assert len({e.trace_id for e in rec.published}) == 31  # a new trace per tick
    assert all(won for _, _, won in rec.claims)


async def test_a_thirty_day_month_fires_30_times(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 4, 1))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *")])
        await clock.sleep_until(ts(2026, 5, 1))
        nursery.cancel_scope.cancel()
    assert len(rec.fired()) == 30


async def test_nothing_fires_before_its_time(mock_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 0))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *")])
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(3599)
        await trio.testing.wait_all_tasks_blocked()
        assert rec.published == []
        mock_clock.jump(1)
        await trio.testing.wait_all_tasks_blocked()
        assert rec.fired() == ["2026-01-01T08:00:00Z"]
        nursery.cancel_scope.cancel()


async def test_ticks_reach_the_cron_steps_queue(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 59))
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
        sub = Subscription(cron_topic("daily"), "daily")
        await backend.declare([sub])
        await start(nursery, clock, [job("daily", "0 8 * * *")], backend)
        deliveries = await backend.receive(sub, 10)
        nursery.cancel_scope.cancel()
    assert [d.envelope.id for d in deliveries] == ["daily@2026-01-01T08:00:00Z"]
    assert deliveries[0].attempt == 1


async def test_per_trigger_timezone(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 10))
        rec = await start(
            nursery,
            clock,
            [job("paris", "0 8 * * *", "Europe/Paris"), job("utc", "0 8 * * *")],
        )
        await clock.sleep_until(ts(2026, 1, 11))
        nursery.cancel_scope.cancel()
    assert rec.fired("paris") == ["2026-01-10T07:00:00Z"]
    assert rec.fired("utc") == ["2026-01-10T08:00:00Z"]


@pytest.mark.parametrize(
    ("zone", "expression", "anchor", "end", "expected"),
    [
        ("Europe/Berlin", "30 2 * * *", utc(2026, 3, 28), utc(2026, 3, 31),
         ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
        ("Europe/Berlin", "30 2 * * *", utc(2026, 10, 24), utc(2026, 10, 27),
         ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ("America/New_York", "30 2 * * *", utc(2026, 3, 7), utc(2026, 3, 10),
         ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
        ("America/New_York", "30 1 * * *", utc(2026, 10, 31), utc(2026, 11, 3),
         ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
    ],
)  # fmt: skip
async def test_dst_days_fire_once(
    autojump_clock: trio.abc.Clock,
    zone: str,
    expression: str,
    anchor: datetime,
    end: datetime,
    expected: list[str],
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(anchor)
        rec = await start(nursery, clock, [job("dst", expression, zone)])
        await clock.sleep_until(end.timestamp())
        nursery.cancel_scope.cancel()
    assert rec.fired() == expected


async def test_every_second_six_fields(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(ts(2026, 1, 1) + 0.5)
        rec = await start(nursery, clock, [job("tick", "* * * * * *", grace=0.0)])
        await clock.sleep_until(ts(2026, 1, 1, 0, 0, 10) + 0.5)
        nursery.cancel_scope.cancel()
    assert rec.fired() == [f"2026-01-01T00:00:{s:02d}Z" for s in range(1, 11)]


async def test_seven_fields_of_the_seeds(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1))
        rec = await start(nursery, clock, [job("cleanup", "0 0 2 * * * *")])
        await clock.sleep_until(ts(2026, 1, 4))
        nursery.cancel_scope.cancel()
    assert rec.fired() == [f"2026-01-0{d}T02:00:00Z" for d in (1, 2, 3)]


# -- missed ticks --------------------------------------------------------------------------


async def test_missed_tick_within_grace_fires_once_on_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 8, 0, 30))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *", grace=60.0)])
        await clock.sleep_until(ts(2026, 1, 2))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-01T08:00:00Z"]
    assert rec.published[0].created_at == pytest.approx(ts(2026, 1, 1, 8, 0, 30))


async def test_missed_tick_beyond_grace_does_not_fire(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 8, 2))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *", grace=60.0)])
        await clock.sleep_until(ts(2026, 1, 2, 9))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-02T08:00:00Z"]
    assert rec.claims == [("daily", ts(2026, 1, 2, 8), True)]


async def test_missed_tick_already_fired_is_not_fired_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 59))
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
        with trio.CancelScope() as first_run:
            # A first process fires 08:00 and dies at 08:00:20...
            async with trio.open_nursery() as inner:
                before = await start(inner, clock, [job("daily", "0 8 * * *")], backend)
                await clock.sleep_until(ts(2026, 1, 1, 8, 0, 20))
                first_run.cancel()
        # ...and a restart 10 s later is within grace, but the tick was already claimed.
        await clock.sleep_until(ts(2026, 1, 1, 8, 0, 30))
        after = await start(nursery, clock, [job("daily", "0 8 * * *")], backend)
        await clock.sleep_until(ts(2026, 1, 1, 12))
        nursery.cancel_scope.cancel()
    assert before.fired() == ["2026-01-01T08:00:00Z"]
    assert after.published == []
    assert after.claims == []  # last_tick already told it


async def test_grace_zero_still_fires_a_tick_due_exactly_at_start(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 8))
        rec = await start(nursery, clock, [job("daily", "0 8 * * *", grace=0.0)])
        await clock.sleep_until(ts(2026, 1, 1, 9))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-01T08:00:00Z"]


async def test_a_stall_collapses_overdue_ticks_into_one(autojump_clock: trio.abc.Clock) -> None:
    """If the backend blocks (a slow claim-and-publish) past several ticks, the actor fires the
    latest overdue tick once, then resumes the schedule — no burst of stale ticks."""

    class SlowFirstPublish(Recorder):
        async def claim_tick(
            self, step: str, scheduled: float, tick: Envelope | None = None
        ) -> bool:
            if not self.published:
                await trio.sleep(5.5 * 3600)
            return await super().claim_tick(step, scheduled, tick)

    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 30))
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
        rec = SlowFirstPublish(backend)
        await nursery.start(
            functools.partial(
                run_cron,
                [job("hourly", "0 * * * *")],
                clock=clock,
                backend=rec,
                is_running=never_running,
            )
        )
        await clock.sleep_until(ts(2026, 1, 1, 14, 30))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-01T08:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T14:00:00Z"]


# -- overlap and several instances --------------------------------------------------------


async def test_tick_is_skipped_while_the_previous_run_is_running(
    autojump_clock: trio.abc.Clock,
) -> None:
    running = {"report": True}
    skipped: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7))
        rec = await start(
            nursery,
            clock,
            [job("report", "0 8 * * *")],
            is_running=running.__getitem__,
            on_skip=lambda step, scheduled: skipped.append((step, scheduled)),
        )
        await clock.sleep_until(ts(2026, 1, 1, 12))
        running["report"] = False
        await clock.sleep_until(ts(2026, 1, 2, 12))
        nursery.cancel_scope.cancel()
    assert skipped == [("report", ts(2026, 1, 1, 8))]
    assert rec.fired() == ["2026-01-02T08:00:00Z"]
    assert [c[1] for c in rec.claims] == [ts(2026, 1, 2, 8)]  # the skipped tick is not claimed


async def test_skip_if_running_false_fires_anyway(autojump_clock: trio.abc.Clock) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7))
        rec = await start(
            nursery,
            clock,
            [job("report", "0 8 * * *", skip_if_running=False)],
            is_running=lambda step: True,
        )
        await clock.sleep_until(ts(2026, 1, 1, 12))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-01T08:00:00Z"]


async def test_two_clock_actors_sharing_a_backend_fire_each_tick_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 59, 30))  # 08:00 within grace for both
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
        jobs = [job("daily", "0 8 * * *"), job("often", "*/15 * * * *")]
        a = await start(nursery, clock, jobs, backend)
        b = await start(nursery, clock, jobs, backend)
        # Stop between ticks: at 00:00 exactly, whether that tick is claimed before this
        # task cancels is only the scheduler's order within one instant.
        await clock.sleep_until(ts(2026, 1, 2, 23, 50))
        nursery.cancel_scope.cancel()
    published = a.published + b.published
    ids = [e.id for e in published]
    assert len(ids) == len(set(ids))
    assert sorted(e.data["scheduled"] for e in published if e.data["step"] == "daily") == [
        "2026-01-01T08:00:00Z",
        "2026-01-02T08:00:00Z",
    ]
    assert len([i for i in ids if i.startswith("often@")]) == (16 + 24) * 4  # from 08:00
    # Both tried every tick; exactly one claim won each time.
    attempts = a.claims + b.claims
    assert len(attempts) == 2 * len(ids)
    assert sum(won for _, _, won in attempts) == len(ids)


# -- readiness, lifecycle, inputs ------------------------------------------------------------


async def test_ready_with_no_jobs_and_runs_until_cancelled(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1))
        rec = await start(nursery, clock, [])
        await trio.sleep(86400)
        nursery.cancel_scope.cancel()
    assert rec.published == []


async def test_a_schedule_that_ends_leaves_the_others_running(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 12, 31))
        rec = await start(
            nursery, clock, [job("once", "0 0 0 1 1 * 2027"), job("daily", "0 8 * * *")]
        )
        await clock.sleep_until(ts(2027, 1, 3))
        nursery.cancel_scope.cancel()
    assert rec.fired("once") == ["2027-01-01T00:00:00Z"]
    assert len(rec.fired("daily")) == 3


def test_scheduled_iso_is_utc_with_z() -> None:
    assert scheduled_iso(ts(2026, 3, 29, 1)) == "2026-03-29T01:00:00Z"
    assert tick_id("a.b", ts(2026, 1, 1)) == "a.b@2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": ""}, "CronJob.step must be a non-empty string"),
        ({"grace": -1.0}, "CronJob.grace must be a number of seconds >= 0, got -1.0"),
        ({"grace": float("nan")}, "CronJob.grace must be a number of seconds >= 0, got nan"),
    ],
)
def test_cron_job_refuses_bad_options(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"step": "s", "schedule": parse_cron("0 8 * * *")}
    with pytest.raises(ValueError, match=message):
        CronJob(**(base | kwargs))  # type: ignore[arg-type]


def test_cron_job_is_frozen() -> None:
    j = job("s", "0 8 * * *")
    assert (j.skip_if_running, j.grace) == (True, 60.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        j.grace = 1.0  # type: ignore[misc]


class FullDisk(Recorder):
    """Claims fail as unavailable (a full disk) `failures` times, then go through."""

    def __init__(self, inner: MemoryBackend, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures

    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("database or disk is full")
        return await super().claim_tick(step, scheduled, tick)


async def test_a_claim_the_backend_refuses_is_retried_until_it_goes_through(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A full disk used to end the clock actor (it is not supervised) and so the runtime.
    logs = io.StringIO()
    hub = LogHub(lambda: 0.0)
    hub.add_sink(stream_sink(logs, fmt="json"))
    async with trio.open_nursery() as nursery:
        clock = WallClock(utc(2026, 1, 1, 7, 59))
        backend = MemoryBackend()
        await nursery.start(backend.run, clock)
        rec = FullDisk(backend, failures=5)
        await nursery.start(
            functools.partial(
                run_cron,
                [job("daily", "0 8 * * *")],
                clock=clock,
                backend=rec,
                is_running=never_running,
                logger=hub.logger,
            )
        )
        await clock.sleep_until(ts(2026, 1, 2, 9))
        nursery.cancel_scope.cancel()
    assert rec.fired() == ["2026-01-01T08:00:00Z", "2026-01-02T08:00:00Z"]
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["error", "info"]
    assert "claim cron tick of 'daily'" in lines[0]["msg"]
    assert "database or disk is full" in lines[0]["error"]


def test_scheduled_iso_matches_datetimes_isoformat() -> None:
    rng = random.Random(7)
    moments = [0.0, 59.0, 951782400.0, 4102444799.0, 253402300799.0, -1.0, -86400.5, 59.9999999]
    moments += [float(rng.randrange(0, 253402300800)) for _ in range(2000)]
    moments += [rng.uniform(0, 4102444800) for _ in range(2000)]  # not whole: datetime's way
    for moment in moments:
        expected = datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")
        assert scheduled_iso(moment) == expected.removesuffix("+00:00") + "Z", moment
