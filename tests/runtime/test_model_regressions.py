"""Bugs the runtime model test (test_model.py) found, each as a small test of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from motet._runtime import Runtime, RuntimeOptions
from motet.backends._sqlite import SqliteBackend
from motet.steps import load_step

from .test_model import counting_threads, quiesce


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
                    options=RuntimeOptions(log_sink=False, telemetry=None),
                )
                await nursery.start(runtime.run)
                await runtime.emit("t", {"n": 1})
                await quiesce()  # every actor is waiting in receive again
                nursery.cancel_scope.cancel()
