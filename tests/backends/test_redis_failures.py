"""What goes wrong around the Redis backend: Redis crashing mid-run, Redis not there at all,
coredis not installed, a poison message, and the wrong inputs a user sends.

Tests that wait for a reconnect let trio's MockClock jump after a little real idle time
(`autojump_threshold`), so the backend's backoff sleeps pass while the real server restarts.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import (
    Delivery,
    Envelope,
    QueueDepth,
    QueueOptions,
    Subscription,
    random_id,
)
from motet._errors import BackendError, BackendUnavailable
from motet.backends._redis import RedisBackend
from motet.backends._redis_link import RedisOptions
from motet.state import StateWrite

from .._redis_server import RedisServer, free_port, redis_server

QUIET = 0.2

# coredis 6.9 leaks the memory streams of a connection whose connect() failed (they are
# entered only after a successful connect), so every refused (re)connect attempt leaves
# ResourceWarnings for the garbage collector. Ignored in this module, and collected after
# each test so they never surface in another module's test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Unclosed <MemoryObject:ResourceWarning",
    "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning",
)


@pytest.fixture(autouse=True)
def collect_leaked_connections() -> Iterator[None]:
    yield
    gc.collect()


JOBS = Subscription("jobs", "worker", QueueOptions(lease=30, max_retries=3))


def env(data: object) -> Envelope:
    return Envelope(topic="jobs", data=data, trace_id="t")


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of the test's own, free to be killed and restarted."""
    with redis_server() as started:
        yield started


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


async def start(nursery: trio.Nursery, clock: WallClock, url: str, prefix: str) -> RedisBackend:
    backend: RedisBackend = await nursery.start(RedisBackend(url, prefix=prefix).run, clock)
    return backend


async def test_redis_crash_and_restart_mid_run_loses_nothing_published_or_acked(
    nursery: trio.Nursery, clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05
    producer = await start(nursery, clock, own_server.url, "r")
    consumer = await start(nursery, clock, own_server.url, "r")
    await consumer.declare([JOBS])
    await producer.publish([env(i) for i in range(20)])
    first = await consumer.receive(JOBS, 5)
    await consumer.ack(first)

    await trio.to_thread.run_sync(own_server.kill)  # SIGKILL: no clean shutdown
    got: list[Delivery] = []

    async def keep_consuming() -> None:
        while True:  # rides out the outage: retries with backoff inside the backend
            batch = await consumer.receive(JOBS, 5)
            got.extend(batch)
            await consumer.ack(batch)

    async with trio.open_nursery() as inner:
        inner.start_soon(keep_consuming)
        await trio.to_thread.run_sync(own_server.start)  # same port, AOF replayed
        await producer.publish([env(i) for i in range(20, 30)])
        while len(got) < 25:
            await trio.sleep(0.5)
        inner.cancel_scope.cancel()

    assert sorted(d.envelope.data for d in first + got) == list(range(30))
    assert (await producer.depth())[JOBS.key] == QueueDepth()
    await producer.state_write("s", "k", StateWrite.set(1), trace_id="t")
    assert await consumer.state_get("s", "k") == 1


async def test_unreachable_redis_at_start_fails_fast_naming_the_url(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(BackendUnavailable) as caught:
        await nursery.start(RedisBackend(url).run, clock)
    message = str(caught.value)
    assert url in message and "redis-server" in message
    assert caught.value.cause is not None


async def test_unanswering_host_at_start_times_out_instead_of_hanging(
    nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05  # the connect timeout runs on trio's clock
    url = "redis://10.255.255.1:6379/0"  # not routed: the SYN goes unanswered (or is refused)
    backend = RedisBackend(url, options=RedisOptions(connect_timeout=1.0))
    with pytest.raises(BackendUnavailable, match=r"10\.255\.255\.1"):
        await nursery.start(backend.run, clock)


async def test_outage_longer_than_the_reconnect_timeout_raises(
    nursery: trio.Nursery, clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    mock_clock.autojump_threshold = 0.05
    backend: RedisBackend = await nursery.start(
        RedisBackend(own_server.url, options=RedisOptions(reconnect_timeout=5.0)).run, clock
    )
    await backend.declare([JOBS])
    await trio.to_thread.run_sync(own_server.kill)
    with pytest.raises(BackendUnavailable, match="unreachable for"):
        await backend.publish([env(1)])


@pytest.mark.parametrize("missing", ["coredis", "hiredis"])
def test_motet_imports_without_the_redis_packages_and_says_how_to_install_them(
    missing: str,
) -> None:
    code = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "import trio, motet, motet.backends._redis as r\n"
        "from motet._clock import WallClock\n"
        "from motet._errors import BackendUnavailable\n"
        "async def main():\n"
        "    try:\n"
        "        await r.RedisBackend('redis://127.0.0.1:1/0').run(WallClock())\n"
        "    except BackendUnavailable as exc:\n"
        "        print(exc)\n"
        "trio.run(main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'motet[redis]'" in result.stdout
    assert missing in result.stdout


async def test_poison_message_attempts_survive_reclaims_and_end_in_dead_letters(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    """A message that kills its worker every time: each lost lease is an attempt, counted
    across instances, so the worker that sees attempt > max_retries + 1 buries it."""
    prefix = "p" + random_id()[:12]
    survivor = await start(nursery, clock, server.url, prefix)
    await survivor.declare([JOBS])
    await survivor.publish([env("poison")])
    for attempt in range(1, JOBS.options.max_retries + 2):
        async with trio.open_nursery() as doomed_scope:
            doomed = await start(doomed_scope, clock, server.url, prefix)
            [delivery] = await doomed.receive(JOBS, 1)
            assert delivery.attempt == attempt
            doomed_scope.cancel_scope.cancel()  # the handler took its process down
        mock_clock.jump(JOBS.options.lease + 1)
    [last] = await survivor.receive(JOBS, 1)
    assert last.attempt == JOBS.options.max_retries + 2
    letter = await survivor.bury(last, error="worker died 4 times")
    assert letter.id and letter.attempts == last.attempt
    [listed] = await survivor.dead_letters(JOBS.key)
    assert listed == letter
    assert (await survivor.depth())[JOBS.key] == QueueDepth(dead=1)


async def test_failing_handler_retries_then_dead_letters(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    backend = await start(nursery, clock, server.url, "f" + random_id()[:12])
    await backend.declare([JOBS])
    await backend.publish([env("bad")])
    delivery = (await backend.receive(JOBS, 1))[0]
    while delivery.attempt <= JOBS.options.max_retries:
        await backend.retry(delivery, delay=2.0, error="ValueError: bad")
        assert (await backend.depth())[JOBS.key] == QueueDepth(delayed=1)
        mock_clock.jump(2.0)
        [delivery] = await backend.receive(JOBS, 1)
    assert delivery.attempt == 4
    letter = await backend.bury(delivery, error="ValueError: bad")
    assert [letter.envelope.data] == [d.envelope.data for d in await backend.dead_letters()]
    assert await backend.redrive([letter.id]) == 1
    [again] = await backend.receive(JOBS, 1)
    assert (again.envelope.data, again.attempt) == ("bad", 1)


async def test_wrong_inputs_are_refused_with_what_was_expected(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    with pytest.raises(ValueError, match="redis://"):
        RedisBackend("localhost:6379")
    with pytest.raises(ValueError, match="prefix"):
        RedisBackend(server.url, prefix="")
    idle = RedisBackend(server.url)
    with pytest.raises(BackendError, match="not running"):
        await idle.publish([env(1)])

    backend = await start(nursery, clock, server.url, "w" + random_id()[:12])
    with pytest.raises(BackendError, match="not declared"):
        await backend.receive(JOBS, 1)
    await backend.declare([JOBS])
    with pytest.raises(ValueError, match="at least 1"):
        await backend.receive(JOBS, 0)
    with pytest.raises(BackendError, match="not JSON"):
        await backend.publish([env({"when": object()})])
    with pytest.raises(BackendError, match="key 1"):
        await backend.publish([env({1: "int keys become strings in JSON"})])
    forged = Delivery(env(1), JOBS.key, 1, "not-a-receipt")
    with pytest.raises(BackendError, match="receipt"):
        await backend.ack([forged])
    with pytest.raises(BackendError, match="not declared"):
        await backend.ack([Delivery(env(1), "nobody@jobs", 1, "0-1/1")])
    assert (await backend.depth())[JOBS.key] == QueueDepth()  # nothing half-published


async def test_a_publish_waiting_when_the_backend_stops_fails_instead_of_hanging(
    clock: WallClock, own_server: RedisServer, mock_clock: MockClock
) -> None:
    outcome: list[BaseException] = []

    async def publish(backend: RedisBackend) -> None:
        try:
            await backend.publish([env(1)])
        except BackendError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as callers, trio.open_nursery() as backend_scope:
        backend = await start(backend_scope, clock, own_server.url, "s" + random_id()[:8])
        await backend.declare([JOBS])
        await trio.to_thread.run_sync(own_server.kill)
        callers.start_soon(publish, backend)
        await trio.testing.wait_all_tasks_blocked(QUIET)  # retrying against a dead Redis
        assert outcome == []
        backend_scope.cancel_scope.cancel()
    [error] = outcome
    assert "stopped before it was done" in str(error)


def test_options_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="reconnect_timeout"):
        RedisOptions(reconnect_timeout=7200)  # longer than call results are remembered
    with pytest.raises(ValueError, match="poll"):
        RedisOptions(poll=0)
    with pytest.raises(ValueError, match="max_connections"):
        RedisOptions(max_connections=0)
