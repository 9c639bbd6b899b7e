"""While Redis is away the backend says why (`write_failure`, which /_motet/health reports),
and forgets it once a call works again (issue 11, item 9)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import QueueOptions, Subscription
from motet._errors import BackendUnavailable
from motet.backends._redis import RedisBackend
from motet.backends._redis_link import RedisOptions
from motet.state import StateWrite

from .._redis_server import RedisServer, redis_server

# coredis leaks the streams of refused connects (see test_redis_failures.py).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Unclosed <MemoryObject:ResourceWarning",
    "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning",
)


@pytest.fixture(autouse=True)
def collect_leaked_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


async def test_write_failure_names_the_outage_until_redis_is_back(
    nursery: trio.Nursery, clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05  # the link's backoff runs on trio's clock
    backend: RedisBackend = await nursery.start(RedisBackend(own_server.url).run, clock)
    await backend.state_write("s", "k", StateWrite.set(1), trace_id="t")
    assert backend.write_failure is None
    await trio.to_thread.run_sync(own_server.kill)
    done = trio.Event()

    async def write() -> None:  # rides out the outage inside the backend
        await backend.state_write("s", "k", StateWrite.set(2), trace_id="t")
        done.set()

    nursery.start_soon(write)
    while backend.write_failure is None:
        await trio.sleep(0.01)
    assert f"127.0.0.1:{own_server.port}" in backend.write_failure
    assert "unreachable" in backend.write_failure
    await trio.to_thread.run_sync(own_server.start)
    await done.wait()
    assert backend.write_failure is None
    assert await backend.state_get("s", "k") == 2


async def test_housekeeping_survives_an_outage_longer_than_the_reconnect_timeout(
    nursery: trio.Nursery, clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05
    options = RedisOptions(reconnect_timeout=1.0, trim_interval=0.5)
    backend: RedisBackend = await nursery.start(
        RedisBackend(own_server.url, options=options).run, clock
    )
    await backend.declare([Subscription("jobs", "worker", QueueOptions())])  # a stream to trim
    await trio.to_thread.run_sync(own_server.kill)
    await trio.sleep(10.0)  # trims fail past the reconnect timeout, round after round
    assert backend.write_failure is not None
    await trio.to_thread.run_sync(own_server.start)
    await backend.state_write("s", "k", StateWrite.set(1), trace_id="t")  # still running
    assert await backend.state_get("s", "k") == 1
    assert backend.write_failure is None


async def test_a_redis_that_cannot_take_writes_is_unavailable_not_broken(
    nursery: trio.Nursery, clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    """maxmemory reached (OOM), like an AOF on a full disk (MISCONF), is a condition of the
    backend: BackendUnavailable, which the step actors wait out, and health says why."""
    backend: RedisBackend = await nursery.start(RedisBackend(own_server.url).run, clock)
    link = backend._link
    assert link is not None
    await backend.state_write("s", "k", StateWrite.set(1), trace_id="t")
    await link.client.config_set({"maxmemory": "1"})
    try:
        with pytest.raises(BackendUnavailable, match="OOM"):
            await backend.state_write("s", "k", StateWrite.set(2), trace_id="t")
        assert backend.write_failure is not None and "OOM" in backend.write_failure
        assert await backend.state_get("s", "k") == 1  # reads still work
    finally:
        await link.client.config_set({"maxmemory": "0"})
    await backend.state_write("s", "k", StateWrite.set(3), trace_id="t")
    assert backend.write_failure is None
