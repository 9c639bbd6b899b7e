"""`GroupCommit`, the Redis backend's merging of concurrent publishes, acks and state
writes into one script call per round trip: who flushes, what a batch holds, and what
callers get when the backend stops."""

from __future__ import annotations

import traceback

import pytest
import trio
import trio.testing

from motet._errors import BackendError, BackendUnavailable
from motet.backends._redis_link import GroupCommit, RedisLink, RedisOptions
from motet.backends._redis_wire import WireError


class Flushes:
    """A flush that records each batch and the task that made it, and waits for `gate`."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], trio.lowlevel.Task]] = []
        self.gate = trio.Event()
        self.gate.set()

    async def flush(self, items: list[str]) -> list[str]:
        self.batches.append((items, trio.lowlevel.current_task()))
        await self.gate.wait()
        return [f"done {item}" for item in items]


async def test_a_lone_caller_flushes_its_own_items_in_its_own_task(
    nursery: trio.Nursery,
) -> None:
    flushes = Flushes()
    commit = GroupCommit[str]("publish", flushes.flush, 100)
    await nursery.start(commit.run)
    assert await commit.submit(["a"]) == "done a"
    assert flushes.batches == [(["a"], trio.lowlevel.current_task())]


async def test_callers_arriving_during_a_flush_go_together_in_the_next(
    nursery: trio.Nursery,
) -> None:
    flushes = Flushes()
    flushes.gate = trio.Event()
    commit = GroupCommit[str]("publish", flushes.flush, 100)
    await nursery.start(commit.run)
    results: dict[str, str] = {}

    async def submit(item: str) -> None:
        results[item] = await commit.submit([item])

    async with trio.open_nursery() as callers:
        callers.start_soon(submit, "first")
        await trio.testing.wait_all_tasks_blocked()  # "first" is being flushed
        for item in ("b", "c", "d"):
            callers.start_soon(submit, item)
        await trio.testing.wait_all_tasks_blocked()
        flushes.gate.set()
    assert [sorted(items) for items, _ in flushes.batches] == [["first"], ["b", "c", "d"]]
    assert results == {item: f"done {item}" for item in ("first", "b", "c", "d")}


async def test_a_lone_flush_in_flight_when_the_backend_stops_raises_backend_error(
    mock_clock: trio.testing.MockClock,
) -> None:
    # Its connection closes under it (a transient error, which the link would otherwise
    # retry for reconnect_timeout): the stopped link says so at once instead.
    link = RedisLink("redis://127.0.0.1:1/0", RedisOptions())
    tries = 0

    async def unreachable() -> None:
        nonlocal tries
        tries += 1
        raise WireError("the connection to Redis at 127.0.0.1:1 closed")

    async def publish(commit: GroupCommit[str]) -> None:
        with pytest.raises(BackendError, match="stopped before it was done"):
            await commit.submit(["a"])

    async def flush(items: list[str]) -> None:
        await link.call("publish messages", unreachable)

    commit = GroupCommit[str]("publish", flush, 100)
    async with trio.open_nursery() as outer, trio.open_nursery() as backend:
        await backend.start(commit.run)
        outer.start_soon(publish, commit)
        await trio.testing.wait_all_tasks_blocked()  # retrying, in its backoff
        assert tries == 1
        backend.cancel_scope.cancel()
        await link.close_wires()
    assert tries == 1
    with pytest.raises(BackendError, match="not running"):
        await commit.submit(["b"])


async def test_a_cancelled_lone_caller_leaves_the_committer_free_for_the_next(
    nursery: trio.Nursery,
) -> None:
    flushes = Flushes()
    flushes.gate = trio.Event()
    commit = GroupCommit[str]("publish", flushes.flush, 100)
    await nursery.start(commit.run)
    with trio.move_on_after(1) as scope:
        await commit.submit(["a"])
    assert scope.cancelled_caught
    flushes.gate.set()
    assert await commit.submit(["b"]) == "done b"
    assert flushes.batches[-1] == (["b"], trio.lowlevel.current_task())


class Odd(Exception):
    """An error that cannot be rebuilt from its arguments."""

    def __init__(self, code: int, *, why: str) -> None:
        super().__init__(f"{code}: {why}")


@pytest.mark.parametrize("kind", ["unavailable", "odd"])
async def test_each_caller_of_a_failed_batch_raises_its_own_error(
    nursery: trio.Nursery, kind: str
) -> None:
    # One exception object raised in every waiting task would carry each raiser's frames
    # into the traceback the others report (and tie them all into one reference cycle).
    flushes = Flushes()
    flushes.gate = trio.Event()
    cause = ConnectionError("Redis went away")

    async def flush(items: list[str]) -> list[str]:
        if items == ["first"]:
            return await flushes.flush(items)
        if kind == "odd":
            raise Odd(7, why="the script failed")
        raise BackendUnavailable("Redis is unreachable", cause=cause) from cause

    commit = GroupCommit[str]("publish", flush, 100)
    await nursery.start(commit.run)
    errors: dict[str, BaseException] = {}

    async def caller_b() -> None:
        try:
            await commit.submit(["b"])
        except Exception as exc:
            errors["b"] = exc

    async def caller_c() -> None:
        try:
            await commit.submit(["c"])
        except Exception as exc:
            errors["c"] = exc

    async with trio.open_nursery() as callers:
        callers.start_soon(commit.submit, ["first"])
        await trio.testing.wait_all_tasks_blocked()  # "first" is being flushed
        callers.start_soon(caller_b)
        callers.start_soon(caller_c)
        await trio.testing.wait_all_tasks_blocked()
        flushes.gate.set()
    b, c = errors["b"], errors["c"]
    assert b is not c
    frames = {k: [f.name for f in traceback.extract_tb(e.__traceback__)] for k, e in errors.items()}
    assert "caller_b" in frames["b"] and "caller_c" not in frames["b"]
    assert "caller_c" in frames["c"] and "caller_b" not in frames["c"]
    if kind == "unavailable":
        assert "flush" in frames["b"], "the flush's own frames are kept"
        assert type(b) is type(c) is BackendUnavailable
        assert str(b) == str(c) == "Redis is unreachable"
        assert b.cause is c.cause is b.__cause__ is cause  # type: ignore[attr-defined]
    else:
        assert type(b) is type(c) is BackendError
        assert "Odd(" in str(b) and type(b.__cause__) is Odd
        assert "flush" in [f.name for f in traceback.extract_tb(b.__cause__.__traceback__)]
