"""A stream's live changes ride out a Redis crash and restart (the follower reconnects)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio

from motet._envelope import random_id
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer, redis_server
from .test_streams import served, sse

# coredis leaks the memory streams of connections that broke or failed to connect (see
# tests/backends/test_redis_failures.py): ignored here, and collected after each test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Unclosed <MemoryObject:ResourceWarning",
    "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning",
)


@pytest.fixture(autouse=True)
def collect_leaked_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


async def test_live_changes_resume_after_redis_restarts(server: RedisServer) -> None:
    prefix = "t" + random_id()[:12]
    with trio.fail_after(40):
        async with served(RedisBackend(server.url, prefix=prefix)) as (runtime, url):
            assert runtime.streams is not None
            progress = runtime.streams.api.progress
            await progress.set("v1", "job", {"pct": 1})
            async with sse(url, "/_streams/progress/v1") as events:
                await events.next()
                await trio.to_thread.run_sync(server.kill)  # a crash, not a clean stop
                await trio.to_thread.run_sync(server.start)
                await progress.set("v1", "job", {"pct": 2})  # rides out the reconnect
                update = await events.next()
            assert (update["id"], update["data"]["event"]["data"]["pct"]) == ("2", 2)
