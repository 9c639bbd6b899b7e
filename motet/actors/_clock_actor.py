"""The clock actor: turns cron schedules into tick messages, each schedule on its own topic.

Every cron trigger of a step is a schedule of its own, with a name (`schedule_name`): the
step's name for its first cron trigger, `<step>#2`, `<step>#3`... for the others. A tick is
identified by (schedule, scheduled time). Every instance of the runtime runs a clock actor;
`claim_tick` on the shared backend lets exactly one of them publish a given tick, so across
instances each tick fires once, while two schedules of one step that come due at the same
moment are two ticks. The claim and the tick message are one atomic write, so a process that
dies around the claim cannot lose a claimed tick. The envelope id is the tick's identity
(`"<schedule>@<scheduled ISO 8601 UTC>"`), so a tick is recognisable wherever it lands.

Time comes only from the injected `Clock` (trio's clock plus a wall anchor): under
`MockClock(autojump_threshold=0)` a month of a daily cron is a few dozen wake-ups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from time import gmtime, strftime  # formatting a given instant, not reading a clock

import attrs
import trio

from .._clock import Clock
from .._envelope import Envelope, cron_topic, new_id
from .._errors import BackendUnavailable, StepDefinitionError
from .._logging import Logger, LogHub
from .._validators import non_empty, seconds
from ..backends._protocol import ScheduleBackend
from ..steps._cron import CronSchedule
from ..steps._model import CronTrigger, Step
from ._outage import Outage

DEFAULT_GRACE = 60.0  # s: on start, a tick missed by at most this long still fires once


def schedule_name(step: str, index: int) -> str:
    """The name of the `index`-th (from 0) cron trigger of `step`: the key of its ticks'
    claims, ids and topic. The first keeps the step's own name, so the ticks (and the
    stored `last_tick`) of a step are the same before and after it gains a second trigger."""
    return step if index == 0 else f"{step}#{index + 1}"


def cron_schedules(steps: Iterable[Step]) -> list[tuple[Step, CronTrigger, str]]:
    """Every cron trigger of `steps` with its schedule name, in step and trigger order.

    Raises StepDefinitionError when two schedules would share a name (a step named
    `Report#2` beside a step `Report` with two cron triggers)."""
    out: list[tuple[Step, CronTrigger, str]] = []
    seen: dict[str, Step] = {}
    for step in steps:
        for index, trigger in enumerate(step.of_type(CronTrigger)):
            name = schedule_name(step.name, index)
            other = seen.setdefault(name, step)
            if other is not step:
                raise StepDefinitionError(
                    f"cron schedule name {name!r} is used by steps {other.name!r} and "
                    f"{step.name!r}; rename the step whose name ends in '#<number>'",
                    file=step.file,
                    step=step.name,
                    field="name",
                )
            out.append((step, trigger, name))
    return out


@attrs.frozen
class CronJob:
    """One cron trigger of one step, as the clock actor runs it.

    `name` is the schedule's name (`schedule_name`; the step's name by default): ticks are
    claimed, identified and published per schedule.
    `skip_if_running`: a tick that comes due while the previous run of this schedule is still
    running in this process is skipped (reported through `on_skip`, not claimed).
    `grace`: on start, the latest tick at or before now fires once if it is at most this
    many seconds old and no instance claimed it.
    """

    step: str = attrs.field(validator=non_empty())
    schedule: CronSchedule
    skip_if_running: bool = True
    grace: float = attrs.field(
        default=DEFAULT_GRACE, validator=seconds(allow_zero=True, allow_inf=True)
    )
    name: str = attrs.field(
        default=attrs.Factory(lambda job: job.step, takes_self=True), validator=non_empty()
    )


def scheduled_iso(scheduled: float) -> str:
    """ISO 8601 UTC of a tick's scheduled time, e.g. '2026-01-01T08:00:00Z'. A whole second
    (as ticks are) by `strftime`: half the cost of a datetime's isoformat, once a tick."""
    if 0 <= scheduled < _YEAR_10000 and int(scheduled) == scheduled:
        return strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(scheduled))
    when = datetime.fromtimestamp(scheduled, tz=UTC).isoformat(timespec="seconds")
    return when.removesuffix("+00:00") + "Z"


_YEAR_10000 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() + 1  # four digits


def tick_id(schedule: str, scheduled: float) -> str:
    """The deterministic id of a tick's envelope: its identity (schedule, scheduled time)."""
    return f"{schedule}@{scheduled_iso(scheduled)}"


def tick_envelope(job: CronJob, scheduled: float, *, created_at: float) -> Envelope:
    """The one message a claimed tick publishes on its schedule's topic."""
    when = scheduled_iso(scheduled)  # once: a tick's id and data name the same instant
    return Envelope(
        topic=cron_topic(job.name),
        data={"step": job.step, "scheduled": when},
        trace_id=new_id(),
        id=f"{job.name}@{when}",  # tick_id(job.name, scheduled)
        created_at=created_at,
    )


@attrs.frozen
class _Ticker:
    clock: Clock
    backend: ScheduleBackend
    is_running: Callable[[str], bool]
    on_skip: Callable[[str, float], object] | None
    logger: Callable[[], Logger] | None = None

    async def run_job(
        self, job: CronJob, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        schedule = job.schedule
        now = self.clock.now()
        missed = await self._missed(job, now)
        next_fire = schedule.next_after(now)
        task_status.started()
        if missed is not None:
            await self.fire(job, missed)
        while next_fire is not None:
            await self.clock.sleep_until(next_fire)
            scheduled = next_fire
            following = schedule.next_after(scheduled)
            now = self.clock.now()
            if following is not None and following <= now:
                # We woke late (a stall, a slow backend): the ticks that came due meanwhile
                # fire once, as the latest of them, instead of in a burst.
                latest = schedule.previous_at_or_before(now)
                if latest is not None and latest > scheduled:
                    scheduled = latest
                    following = schedule.next_after(scheduled)
            await self.fire(job, scheduled, now)
            next_fire = following

    async def _missed(self, job: CronJob, now: float) -> float | None:
        """The tick missed while nothing ran, if it is within grace and unclaimed."""
        latest = job.schedule.previous_at_or_before(now)
        if latest is None or now - latest > job.grace:
            return None
        last = await self.backend.last_tick(job.name)
        if last is not None and last >= latest:
            return None
        return latest

    async def fire(self, job: CronJob, scheduled: float, now: float | None = None) -> bool:
        """Skip, or claim and publish one tick. True when this call published it. `now`:
        the clock as the caller just read it (the tick's creation time), if it did."""
        if job.skip_if_running and self.is_running(job.name):
            if self.on_skip is not None:
                self.on_skip(job.name, scheduled)
            return False
        created_at = self.clock.now() if now is None else now
        envelope = tick_envelope(job, scheduled, created_at=created_at)
        outage: Outage | None = None  # made at the first failure: most ticks need none
        while True:
            try:
                # Claimed and published in one write: never a claimed tick nobody published.
                # Repeating a claim is safe, so a backend outage (a full disk) is waited out.
                won = await self.backend.claim_tick(job.name, scheduled, envelope)
            except BackendUnavailable as exc:
                if outage is None:
                    outage = Outage(self._logger, f"claim cron tick of {job.name!r}")
                await outage.failed(exc)
                continue
            if outage is not None:
                outage.ok()
            return won

    def _logger(self) -> Logger:
        # Without a logger (a bare `run_cron` in a test) outages go to a hub with no sinks.
        return self.logger() if self.logger is not None else LogHub(self.clock.now).logger()


async def run_cron(
    jobs: Sequence[CronJob],
    *,
    clock: Clock,
    backend: ScheduleBackend,
    is_running: Callable[[str], bool],
    on_skip: Callable[[str, float], object] | None = None,
    logger: Callable[[], Logger] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run every job until cancelled, one task each.

    Ready (`task_status.started()`) once every job has computed its first fire time and its
    missed-tick decision. `is_running(name)` says whether the previous run of the schedule
    `name` (`CronJob.name`) is still running in this process; `on_skip(name, scheduled)` is
    told about each skipped tick.
    A tick is claimed and published in one atomic write: a crash never loses a claimed tick
    and never fires one twice.
    """
    ticker = _Ticker(clock, backend, is_running, on_skip, logger)
    async with trio.open_nursery() as nursery:
        for job in jobs:
            await nursery.start(ticker.run_job, job)
        task_status.started()
        # Schedules whose last year has passed end their task; the actor itself runs on.
        await trio.sleep_forever()
