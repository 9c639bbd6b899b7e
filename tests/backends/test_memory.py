"""The memory backend: the shared contract, plus what only the reference backend offers."""

from __future__ import annotations

import pytest
import trio

from motet._clock import WallClock
from motet.backends import MemoryBackend

from .contract import BackendContract


class TestMemoryContract(BackendContract):
    quiet_seconds = 0.0  # no I/O: "all tasks blocked" already means "would block"

    @pytest.fixture
    async def backend(self, nursery: trio.Nursery, clock: WallClock) -> MemoryBackend:
        backend: MemoryBackend = await nursery.start(MemoryBackend().run, clock)
        return backend

    @pytest.fixture
    async def other_instance(
        self, nursery: trio.Nursery, clock: WallClock, backend: MemoryBackend
    ) -> MemoryBackend:
        # Instances in one process share the one object, each running it.
        shared: MemoryBackend = await nursery.start(backend.run, clock)
        return shared
