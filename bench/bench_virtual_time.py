"""Virtual time: a month of one every-minute cron under MockClock, in real seconds.

    .venv/bin/python bench/bench_virtual_time.py [--days 31] [--rounds 3]

Two figures, each the best of `--rounds`, with a same-run baseline:

- **cron month**: a test runtime (`open_test_runtime`, memory backend, `MockClock` with
  autojump) on one step whose cron fires every minute and whose handler logs one line;
  `advance(days)` is timed (44,640 ticks for 31 days). Target: < 2 s real time.
- **README snippet**: the README's "Testing your steps" snippet on the example app
  (`steps/`, all example folders): POST /pets, settle, advance 31 days. Target: < 2 s.
Wall and CPU seconds are both printed: on a shared machine the CPU figure is the steadier.
`--steps` adds, from one more (untimed) day of the cron run, trio task steps and I/O waits
(scheduler rounds, each clock jump being one) per tick: what load does not move.

- **baseline**: a bare trio task sleeping once per virtual minute for the same month under
  the same MockClock (what trio itself costs per tick), so the ratio says how much motet adds
  per tick on this machine at this moment.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from motet import Context, Step, cron
from motet.steps._config import step_from_config
from motet.testing import open_test_runtime

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _minute_step() -> Step:
    async def handler(ctx: Context) -> None:
        ctx.logger.info("tick")

    return step_from_config({"name": "EveryMinute", "triggers": [cron("* * * * *")]}, handler)


async def _cron_month(days: int) -> tuple[float, int]:
    async with open_test_runtime([_minute_step()], start=START) as app:
        t0 = time.perf_counter()
        await app.advance(timedelta(days=days))
        await app.settle()
        elapsed = time.perf_counter() - t0
        return elapsed, len(app.log_messages("EveryMinute"))


async def _readme_snippet(days: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with open_test_runtime("steps", start=START, root=ROOT) as app:
        r = await app.http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": 3})
        assert r.status == 200, r
        await app.settle(fail_fast=True)
        assert app.messages("pet-created")[0]["name"] == "Rex"
        await app.advance(timedelta(days=days))
        assert len(app.log_messages("DailyFeedingReminder")) > 0
        lines = len(app.logs)
    return time.perf_counter() - t0, lines


async def _bare_ticks(days: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = days * 24 * 60
    for _ in range(n):
        await trio.sleep(60)
    return time.perf_counter() - t0, n


def _run(fn: Any, days: int) -> tuple[float, float, int]:
    """(wall s, CPU s of this process, count) of one run on a fresh MockClock."""
    c0 = time.process_time()
    wall, count = trio.run(fn, days, clock=trio.testing.MockClock(autojump_threshold=0))
    return wall, time.process_time() - c0, count


class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0
        self.rounds = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        self.rounds += 1


def _steps_per_tick() -> tuple[float, float]:
    """(task steps, scheduler rounds) per tick of one day of the cron run."""
    steps = _Steps()
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(_cron_month, 1, clock=clock, instruments=[steps])
    return steps.steps / 1440, steps.rounds / 1440


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("cron", "readme"), default=None)
    parser.add_argument("--steps", action="store_true", help="task steps and rounds per tick")
    args = parser.parse_args()
    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(args.rounds):  # interleaved: one of each per round
        for name, fn in (("bare", _bare_ticks), ("cron", _cron_month), ("readme", _readme_snippet)):
            if args.only is not None and name not in ("bare", args.only):
                continue
            run = _run(fn, args.days)
            if name not in best or run[0] < best[name][0]:
                best[name] = run
    bare_wall, bare_cpu, ticks = best["bare"]
    print(f"days={args.days} rounds={args.rounds} (best wall time of each, interleaved)")
    print(
        f"{'bare trio, one sleep a minute':30}: {bare_wall:7.3f} s wall "
        f"{bare_cpu:7.3f} s CPU ({ticks} wake-ups)"
    )
    labels = (("cron", "cron month, 1 every-minute"), ("readme", "README snippet, example app"))
    for name, label in labels:
        if name in best:
            wall, cpu, count = best[name]
            print(
                f"{label:30}: {wall:7.3f} s wall {cpu:7.3f} s CPU ({count} log lines; "
                f"{wall / bare_wall:4.1f}x bare wall, {cpu / bare_cpu:4.1f}x bare CPU; "
                "target < 2 s)"
            )
    if args.steps:
        steps, rounds = _steps_per_tick()
        print(f"cron run, per tick: {steps:.2f} task steps, {rounds:.2f} scheduler rounds")


if __name__ == "__main__":
    main()
