"""The memory backend against the queue model (tests/backends/queue_model.py), over many
more seeded random walks than the shared contract runs, with exact depth counts."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Delivery, QueueStrategy, Subscription
from motet.backends import MemoryBackend
from motet.backends._protocol import Backend

from .queue_model import random_walk


async def receive_now(backend: Backend, s: Subscription, max_count: int) -> list[Delivery]:
    got: list[Delivery] = []
    async with trio.open_nursery() as nursery:

        async def receive() -> None:
            got.extend(await backend.receive(s, max_count))
            nursery.cancel_scope.cancel()

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return got


@pytest.mark.parametrize("strategy", ["standard", "fifo", "priority"])
@pytest.mark.parametrize("seed", range(12))
async def test_random_walk_matches_the_model(
    strategy: QueueStrategy,
    seed: int,
    nursery: trio.Nursery,
    clock: WallClock,
    mock_clock: MockClock,
) -> None:
    backend: MemoryBackend = await nursery.start(MemoryBackend().run, clock)
    await random_walk(
        backend,
        clock,
        mock_clock,
        receive_now,
        strategy=strategy,
        seed=f"memory-{seed}",
        steps=300,
        exact_depth=True,
    )
