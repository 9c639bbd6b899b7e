"""`GroupCommit`, the Redis backend's merging of concurrent publishes, acks and state
writes into one script call per round trip: who flushes, what a batch holds, and what
callers get when the backend stops."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from motet._errors import BackendError
from motet.backends._redis_link import GroupCommit


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


async def test_the_end_of_run_fails_a_caller_flushing_alone_with_backend_error() -> None:
    flushes = Flushes()
    flushes.gate = trio.Event()  # never set: the flush hangs until run ends
    commit = GroupCommit[str]("publish", flushes.flush, 100)
    failed: list[BaseException] = []

    async def submit() -> None:
        try:
            await commit.submit(["a"])
        except BackendError as exc:
            failed.append(exc)

    async with trio.open_nursery() as outer, trio.open_nursery() as backend:
        await backend.start(commit.run)
        outer.start_soon(submit)
        await trio.testing.wait_all_tasks_blocked()
        backend.cancel_scope.cancel()
    assert len(failed) == 1
    assert "stopped before it was done" in str(failed[0])
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
