"""The instance supervisor's policy with scripted children under MockClock: restarts and
their backoff, giving up, stop and forced stop. (Real processes: test_start_instances.)"""

from __future__ import annotations

import io
import itertools
import json
import math
import signal

import pytest
import trio

from motet._backoff import Backoff
from motet.cli._instances import InstanceStream, InstanceSupervisor, RestartPolicy, describe_exit


class ScriptedChild:
    """Exits with `status` after `lifetime` s (never when None); SIGTERM ends it with -15
    unless it ignores SIGTERM."""

    def __init__(
        self, pid: int, lifetime: float | None, status: int, ignores_sigterm: bool = False
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.signals: list[int] = []
        self._lifetime = math.inf if lifetime is None else lifetime
        self._status = status
        self._ignores_sigterm = ignores_sigterm
        self._ended = trio.Event()

    async def wait(self) -> int:
        with trio.move_on_after(self._lifetime):
            await self._ended.wait()
        if self.returncode is None:
            self.returncode = self._status
        return self.returncode

    def _end(self, status: int) -> None:
        if self.returncode is None:
            self.returncode = status
        self._ended.set()

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGKILL or not self._ignores_sigterm:
            self._end(-sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Script:
    """Spawns ScriptedChild objects: `plans[instance]` lists (lifetime, status) per start;
    the last plan repeats."""

    def __init__(
        self, plans: dict[int, list[tuple[float | None, int]]], ignores_sigterm: bool = False
    ) -> None:
        self.plans = plans
        self.ignores_sigterm = ignores_sigterm
        self.spawned: list[tuple[float, int, ScriptedChild]] = []

    async def __call__(self, instance: int) -> ScriptedChild:
        await trio.lowlevel.checkpoint()
        starts = sum(1 for _, i, _ in self.spawned if i == instance)
        plan = self.plans[instance]
        lifetime, status = plan[min(starts, len(plan) - 1)]
        child = ScriptedChild(1000 + len(self.spawned), lifetime, status, self.ignores_sigterm)
        self.spawned.append((trio.current_time(), instance, child))
        return child

    def starts(self, instance: int) -> list[float]:
        return [t for t, i, _ in self.spawned if i == instance]


async def test_a_child_that_dies_is_restarted_with_a_growing_delay(autojump_clock: object) -> None:
    script = Script({1: [(1.0, 1), (1.0, 1), (1.0, 1), (None, 0)], 2: [(None, 0)]})
    lines: list[str] = []
    supervisor = InstanceSupervisor(2, script, RestartPolicy(intensity=10), echo=lines.append)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, supervisor, 100.0)
        status = await supervisor.run()
    assert status == 0
    starts = script.starts(1)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.5, 2.0, 3.0])  # 1 s of life + 0.5, 1, 2 s of backoff
    assert len(script.starts(2)) == 1
    first = next(child for _, i, child in script.spawned if i == 1)
    assert (
        f"motet: instance 1 (pid {first.pid}) exited with status 1 unexpectedly; "
        "restarting it in 0.5 s"
    ) in lines, lines
    # The stop reached every live child once, as SIGTERM.
    live = [child for _, _, child in script.spawned if child.signals]
    assert [child.signals for child in live] == [[signal.SIGTERM], [signal.SIGTERM]]


async def test_a_child_that_ran_long_enough_restarts_after_the_first_delay_again(
    autojump_clock: object,
) -> None:
    script = Script({1: [(1.0, 1), (1.0, 1), (40.0, 1), (1.0, 1), (None, 0)]})
    supervisor = InstanceSupervisor(1, script, RestartPolicy(intensity=10), echo=lambda _: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, supervisor, 200.0)
        await supervisor.run()
    starts = script.starts(1)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.5, 2.0, 40.5, 2.0])


async def test_children_that_keep_dying_stop_everything_with_an_error(
    autojump_clock: object,
) -> None:
    script = Script({1: [(0.1, 3)], 2: [(None, 0)]})
    lines: list[str] = []
    policy = RestartPolicy(intensity=3, period=60.0)
    status = await InstanceSupervisor(2, script, policy, echo=lines.append).run()
    assert status == 1
    assert len(script.starts(1)) == 4  # the first start and 3 restarts; the 4th exit gives up
    assert lines[-1].startswith(
        "motet: error: instances keep dying: 4 unexpected exits within 60 s (last: instance 1 (pid "
    ), lines
    healthy = next(child for _, i, child in script.spawned if i == 2)
    assert healthy.signals == [signal.SIGTERM]
    # A restart is announced only once decided: the exit that gives up announces none.
    assert sum("restarting it in" in line for line in lines) == 3, lines


async def test_instances_dying_together_each_wait_only_their_own_backoff(
    autojump_clock: object,
) -> None:
    script = Script({1: [(1.0, 1), (None, 0)], 2: [(1.0, 1), (1.0, 1), (None, 0)]})
    supervisor = InstanceSupervisor(2, script, RestartPolicy(intensity=10), echo=lambda _: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, supervisor, 50.0)
        assert await supervisor.run() == 0
    assert script.starts(1) == pytest.approx([0.0, 1.5])
    assert script.starts(2) == pytest.approx([0.0, 1.5, 3.5])


async def test_exits_spread_over_more_than_the_period_are_tolerated(autojump_clock: object) -> None:
    script = Script({1: [(30.0, 1)] * 6 + [(None, 0)]})
    policy = RestartPolicy(intensity=2, period=60.0, healthy_after=1000.0)
    supervisor = InstanceSupervisor(1, script, policy, echo=lambda _: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, supervisor, 400.0)
        assert await supervisor.run() == 0
    assert len(script.starts(1)) == 7


async def test_a_child_that_reports_a_user_error_is_not_restarted(autojump_clock: object) -> None:
    script = Script({1: [(0.5, 2)], 2: [(None, 0)]})
    lines: list[str] = []
    status = await InstanceSupervisor(2, script, echo=lines.append).run()
    assert status == 1
    assert len(script.starts(1)) == 1
    assert "the project's steps or config are wrong" in lines[-1]


async def test_a_second_signal_forwards_again_then_kills_after_the_grace(
    autojump_clock: object,
) -> None:
    script = Script({1: [(None, 0)], 2: [(None, 0)]}, ignores_sigterm=True)
    supervisor = InstanceSupervisor(2, script, RestartPolicy(kill_grace=7.0), echo=lambda _: None)
    async with trio.open_nursery() as nursery:

        async def signals() -> None:
            await trio.sleep(1.0)
            supervisor.stop()
            await trio.sleep(1.0)
            supervisor.force(signal.SIGINT)

        nursery.start_soon(signals)
        status = await supervisor.run()
        stopped_at = trio.current_time()
    assert status == 128 + signal.SIGINT
    assert stopped_at == pytest.approx(9.0)
    for _, _, child in script.spawned:
        assert child.signals == [signal.SIGTERM, signal.SIGTERM, signal.SIGKILL]


async def test_a_stop_during_a_restart_delay_starts_nothing_more(autojump_clock: object) -> None:
    script = Script({1: [(1.0, 1)]})
    policy = RestartPolicy(backoff=Backoff(initial=5.0, cap=8.0))
    supervisor = InstanceSupervisor(1, script, policy, echo=lambda _: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_after, supervisor, 2.0)
        assert await supervisor.run() == 0
        assert trio.current_time() == pytest.approx(2.0)
    assert len(script.starts(1)) == 1


async def test_a_child_failing_while_stopping_makes_the_exit_status_1(
    autojump_clock: object,
) -> None:
    script = Script({1: [(None, 0)]}, ignores_sigterm=True)
    lines: list[str] = []
    supervisor = InstanceSupervisor(1, script, echo=lines.append)
    async with trio.open_nursery() as nursery:

        async def stop_then_fail() -> None:
            await trio.sleep(1.0)
            supervisor.stop()
            child = script.spawned[0][2]
            await trio.sleep(1.0)
            child._end(1)

        nursery.start_soon(stop_then_fail)
        assert await supervisor.run() == 1
    assert "exited with status 1 while stopping" in lines[-1]


def test_instances_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        InstanceSupervisor(0, Script({}))


def test_exit_statuses_are_described_as_a_shell_would() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(-200) == "was killed by signal 200"


def test_log_lines_carry_the_instance() -> None:
    out = io.StringIO()
    stream = InstanceStream(out, 3, json_lines=True)
    stream.write('{"time": 1, "msg": "a"}\n{"time"')
    stream.write(": 2}\n{}\nnot json\n")
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines[:3]] == [
        {"instance": 3, "time": 1, "msg": "a"},
        {"instance": 3, "time": 2},
        {"instance": 3},
    ]
    assert lines[3] == "#3 not json"
    pretty = io.StringIO()
    InstanceStream(pretty, 2).write("12:00:00.000 INFO  [motet] started\n")
    assert pretty.getvalue() == "#2 12:00:00.000 INFO  [motet] started\n"


async def _stop_after(supervisor: InstanceSupervisor, seconds: float) -> None:
    await trio.sleep(seconds)
    supervisor.stop()
