"""Bugs the runtime model test (test_model.py) found, each as a small test of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing

from motet._runtime import Runtime, RuntimeOptions
from motet.backends._sqlite import SqliteBackend
from motet.steps import load_step
from motet.supervision import ChildSpec, Supervisor, SupervisorOptions

from .test_model import (
    FAN_A,
    FAN_B,
    Behavior,
    World,
    counting_threads,
    quiesce,
)

ROUNDS = 20  # trio runs a batch of ready tasks in random order


async def test_a_hard_stop_of_an_idle_runtime_on_sqlite_ends_cleanly(tmp_path: Path) -> None:
    """The caller cancels `Runtime.run` (a hard stop) while a step actor waits for work.
    The backend stops at once and wakes its waiting receivers; the step actors are the
    supervisor's shielded children, stopped one by one, so a fetcher woken by the backend's
    stop met "sqlite backend ... is not running" before its cancellation, and that error,
    mixed with the supervisor's cancellation of the same child, escaped the supervisor:
    `run` raised BackendError instead of ending."""

    async def handler(data: Any, ctx: Any) -> None:
        pass

    steps = [
        load_step({"name": f"S{i}", "triggers": [{"type": "queue", "topic": "t"}]}, handler)
        for i in range(3)
    ]
    with counting_threads():
        for _ in range(3):
            async with trio.open_nursery() as nursery:
                runtime = Runtime(
                    steps,
                    backend=SqliteBackend(tmp_path / "motet.db"),
                    options=RuntimeOptions(log_sink=False),
                )
                await nursery.start(runtime.run)
                await runtime.emit("t", {"n": 1})
                await quiesce()  # every actor is waiting in receive again
                nursery.cancel_scope.cancel()


async def test_a_child_failing_as_its_supervisor_stops_it_does_not_crash_the_supervisor() -> None:
    """The same bug, in the supervisor alone: a ready child's task wakes with an error in the
    moment the supervisor cancels that child (trio runs the two in either order, so this is
    repeated). The error is the child's exit reason; the supervisor stops cleanly."""
    for _ in range(ROUNDS):
        gate = trio.Event()

        async def child(*, task_status: Any, gate: trio.Event = gate) -> None:
            async def fails_when_woken() -> None:
                await gate.wait()
                raise RuntimeError("the backend is gone")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fails_when_woken)
                task_status.started()
                await trio.sleep_forever()

        supervisor = Supervisor([ChildSpec(id="c", start=child)], SupervisorOptions(name="s"))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trio.testing.wait_all_tasks_blocked()
            gate.set()
            nursery.cancel_scope.cancel()


def test_a_message_abandoned_after_lost_leases_reports_the_attempts_it_had() -> None:
    """Found by the model. FanB allows 2 attempts. Both are lost to actor crashes; the third
    delivery is not run but dead-lettered, and its dead letter must say 2 attempts, as the log
    line does (it said 3)."""
    with counting_threads():
        world = World("memory")
        try:
            n = next(world.numbers)
            units = [
                world.new_unit(FAN_A, n, Behavior("ok")),
                world.new_unit(FAN_B, n, Behavior("slow")),
            ]
            world.call(lambda: world.emit("fan", [({"n": n}, units, {})]))
            world.call(lambda: world.crash(FAN_B.step))
            world.call(lambda: world.advance(31.0))  # the lease runs out: attempt 2 starts
            world.call(lambda: world.crash(FAN_B.step))
            world.call(world.settle)
            letters = world.call(world.dead_letters)
        finally:
            world.close()
    assert [(r.attempt, r.outcome) for r in units[1].runs] == [(1, "crashed"), (2, "crashed")]
    assert [(d.subscription, d.attempts) for d in letters] == [(FAN_B.key, 2)]
