"""The Redis backend passes the shared backend contract against a real redis-server.

One private redis-server (tests/_redis_server.py, AOF on) serves the whole module; every
test gets its own key prefix, so tests never see each other's keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from motet._clock import WallClock
from motet._envelope import random_id
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer, redis_server
from .contract import BackendContract


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture
def prefix() -> str:
    return "t" + random_id()[:12]


class TestRedisContract(BackendContract):
    # A round trip to a local Redis takes well under a millisecond, but the VM is noisy: the
    # contract's "receive would block" must not fire while a script call is in flight.
    quiet_seconds = 0.1

    @pytest.fixture
    async def backend(
        self, nursery: trio.Nursery, clock: WallClock, server: RedisServer, prefix: str
    ) -> RedisBackend:
        backend: RedisBackend = await nursery.start(
            RedisBackend(server.url, prefix=prefix).run, clock
        )
        return backend

    @pytest.fixture
    async def other_instance(
        self,
        nursery: trio.Nursery,
        clock: WallClock,
        server: RedisServer,
        prefix: str,
        backend: RedisBackend,
    ) -> RedisBackend:
        other: RedisBackend = await nursery.start(
            RedisBackend(server.url, prefix=prefix).run, clock
        )
        return other
