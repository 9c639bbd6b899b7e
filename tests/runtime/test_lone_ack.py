"""The ack of a lone delivery (nothing else held, no ack pending, the acker idle) is written
by its worker right after the handler instead of by the acker a scheduler round later. It
keeps the acker's guarantees: written before the handler's message counts as done, handed
to the acker (which retries with backoff) when the backend refuses it, and a busy actor's
acks are still batched by the acker."""

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

ROUNDS = 20


def _runtime(handler: Any, backend: MemoryBackend, concurrency: int = 1) -> Runtime:
    step = load_step(
        {"name": "Lone", "triggers": [{"type": "queue", "topic": "t", "concurrency": concurrency}]},
        handler,
    )
    return Runtime([step], backend=backend, options=RuntimeOptions(log_sink=False))


async def test_a_lone_ack_is_written_before_the_next_scheduler_round(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    handled = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        handled.set()

    runtime = _runtime(handler, backend)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        # trio runs each batch of ready tasks in a random order: an acker woken with this
        # task would be done before it about half the time, so the check is repeated.
        for n in range(ROUNDS):
            handled = trio.Event()
            message_id = await runtime.emit("t", {"n": n})
            await handled.wait()
            # The worker wrote the ack in the step that ran the handler: when this task
            # runs again the message is done, without waiting for an acker's round.
            assert backend.pending_total() == 0, n
            status = await runtime.message(message_id)
            assert status is not None and status.state == "done"
        runtime.stop()


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
