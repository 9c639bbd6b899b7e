"""The ack of a lone delivery (nothing else held, no ack pending, the acker idle) is written
by its worker right after the handler instead of by the acker a scheduler round later. It
keeps the acker's guarantees: handed to the acker (which retries with backoff) when the
backend refuses it, and a busy actor's acks are still batched by the acker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import trio

from motet._envelope import Delivery
from motet._errors import BackendUnavailable
from motet._runtime import Runtime, RuntimeOptions
from motet._status import Settlement
from motet.backends import MemoryBackend
from motet.steps import load_step

ROUNDS = 20  # lone deliveries, one after the other


def _runtime(handler: Any, backend: MemoryBackend, concurrency: int = 1) -> Runtime:
    step = load_step(
        {"name": "Lone", "triggers": [{"type": "queue", "topic": "t", "concurrency": concurrency}]},
        handler,
    )
    return Runtime([step], backend=backend, options=RuntimeOptions(log_sink=False))


class _AckerSteps(trio.abc.Instrument):
    """Counts the scheduler steps of step actors' ackers."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("._acker"):
            self.steps += 1


async def test_a_lone_ack_is_written_by_its_worker_without_waking_the_acker(
    autojump_clock: Any,
) -> None:
    backend = MemoryBackend()
    handled = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        handled.set()

    runtime = _runtime(handler, backend)
    acker = _AckerSteps()
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await trio.sleep(1)  # the acker has started and waits
        trio.lowlevel.add_instrument(acker)
        for n in range(ROUNDS):
            handled = trio.Event()
            message_id = await runtime.emit("t", {"n": n})
            await handled.wait()
            while backend.pending_total():
                await trio.lowlevel.checkpoint()
            status = await runtime.message(message_id)
            assert status is not None and status.state == "done"
        trio.lowlevel.remove_instrument(acker)
        runtime.stop()
    assert acker.steps == 0  # every ack written by the worker that ran its handler


async def test_a_lone_ack_the_backend_refuses_goes_to_the_acker(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    real = MemoryBackend.finish
    refusals = 2

    async def finish(
        self: MemoryBackend, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise BackendUnavailable("memory backend: refused for the test")
        await real(self, deliveries, settlements)

    monkeypatch.setattr(MemoryBackend, "finish", finish)

    async def handler(data: Any, ctx: Any) -> None:
        runs.append(data["n"])

    backend = MemoryBackend()
    runtime = _runtime(handler, backend)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        message_id = await runtime.emit("t", {"n": 1})
        while backend.pending_total():
            await trio.sleep(0.1)  # virtual time: the acker's backoff
        assert refusals == 0  # refused inline, then once by the acker, then written
        status = await runtime.message(message_id)
        assert status is not None and status.state == "done"
        runtime.stop()
    assert runs == [1]  # handled once: the refused ack was kept, not lost


async def test_a_busy_actor_still_batches_its_acks(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    real = MemoryBackend.finish

    async def finish(
        self: MemoryBackend, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        batches.append(len(deliveries))
        await real(self, deliveries, settlements)

    monkeypatch.setattr(MemoryBackend, "finish", finish)
    done = trio.Event()
    count = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal count
        count += 1
        if count == 200:
            done.set()

    backend = MemoryBackend()
    runtime = _runtime(handler, backend, concurrency=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        for n in range(200):
            await runtime.emit("t", {"n": n})
        await done.wait()
        while backend.pending_total():
            await trio.sleep(0.1)
        runtime.stop()
    assert sum(batches) == 200
    assert len(batches) < 100  # batched: far fewer writes than acks
