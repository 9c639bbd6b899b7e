"""The SQLite backend's internals that the contract cannot see: which commits fsync, that
leasing costs the same whatever the backlog (indexes, not scans), which calls share a commit
and where checkpoints run."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Envelope
from motet._errors import BackendUnavailable
from motet.backends import SqliteBackend
from motet.backends import _sqlite_queue as q
from motet.backends._sqlite_checkpoint import BACKSTOP_PAGES, EVERY_CHANGES, Checkpointer
from motet.backends._sqlite_schema import CACHE_KIB, connect, open_writer
from motet.backends._sqlite_writer import CommitStatistics, SqliteWriter, Tx

from .contract import sub

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def current_sync(tx: Tx) -> str:
    return SYNC_NAMES[tx.conn.execute("PRAGMA synchronous").fetchone()[0]]


@pytest.mark.parametrize(
    ("configured", "ack_only", "mixed"),
    [("FULL", "NORMAL", "FULL"), ("EXTRA", "NORMAL", "EXTRA"), ("NORMAL", "NORMAL", "NORMAL")],
)
async def test_only_batches_that_create_work_pay_for_an_fsync(
    tmp_path: Path,
    clock: WallClock,
    mock_clock: MockClock,
    configured: str,
    ack_only: str,
    mixed: str,
) -> None:
    path = tmp_path / "motet.db"
    conn = open_writer(path, synchronous=configured, busy_timeout=1, max_bytes=None)  # type: ignore[arg-type]
    writer = SqliteWriter(conn, path, max_batch=64, synchronous=configured)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.serve, clock, lambda touched, external: None)
            assert await writer.call(current_sync) == configured
            assert await writer.call(current_sync, must_sync=False) == ack_only
            seen: list[str] = []

            async def call(must_sync: bool) -> None:
                seen.append(await writer.call(current_sync, must_sync=must_sync))

            async with trio.open_nursery() as both:  # one batch: the strictest wins
                both.start_soon(call, False)
                both.start_soon(call, True)
            assert seen == [mixed, mixed]
            assert await writer.call(current_sync) == configured
            nursery.cancel_scope.cancel()
    finally:
        conn.close()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = open_writer(tmp_path / "motet.db", synchronous="NORMAL", busy_timeout=1, max_bytes=None)
    yield conn
    conn.close()


def steps_to_lease(conn: sqlite3.Connection, backlog: int, strategy: str) -> int:
    """SQLite VM steps spent leasing 10 messages of one subscription with a backlog of
    3 x `backlog` (some leased, some delayed), another subscription's backlog alongside."""
    s = sub(step=f"s{backlog}{strategy}", strategy=strategy)  # type: ignore[arg-type]
    other = sub(step=f"o{backlog}{strategy}")
    tx = Tx(conn, 1000.0)
    conn.execute("BEGIN")
    q.declare(tx, [s, other])
    q.publish(
        tx,
        [
            q.encode(Envelope("orders", i, "t", group=f"g{i // 3}", priority=i % 7))
            for i in range(3 * backlog)
        ],
    )
    # Some leased, some waiting for a retry in the future (fifo: their groups held behind).
    q.lease(tx, s.key, backlog // 3, 60.0)
    delayed, _ = q.lease(tx, s.key, backlog // 3, 60.0)
    for d in delayed:
        q.retry(tx, s.key, q.parse_receipt(d), 600.0, "later")
    conn.execute("COMMIT")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        conn.execute("BEGIN")
        deliveries, _ = q.lease(tx, s.key, 10, 60.0)
        conn.execute("ROLLBACK")
    finally:
        conn.set_progress_handler(None, 1)
    assert deliveries
    return steps


@pytest.mark.parametrize("strategy", ["standard", "priority", "fifo"])
def test_leasing_cost_does_not_grow_with_the_backlog(
    database: sqlite3.Connection, strategy: str
) -> None:
    small = steps_to_lease(database, 100, strategy)
    large = steps_to_lease(database, 5000, strategy)
    assert large < small * 1.5, (small, large)


async def test_a_call_that_raises_leaves_nothing_and_spares_its_batch(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    conn = open_writer(path, synchronous="NORMAL", busy_timeout=1, max_bytes=None)
    writer = SqliteWriter(conn, path, max_batch=64, synchronous="NORMAL")

    def mark(step: str, fail: Exception | None) -> Callable[[Tx], str]:
        def fn(tx: Tx) -> str:
            tx.conn.execute("INSERT INTO cron_marks VALUES (?, 1.0, 1.0)", (step,))
            if fail is not None:
                raise fail
            return step

        return fn

    outcomes: dict[str, object] = {}

    async def call(step: str, fail: Exception | None, savepoint: bool) -> None:
        try:
            outcomes[step] = await writer.call(mark(step, fail), savepoint=savepoint)
        except Exception as error:
            outcomes[step] = error

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.serve, clock, lambda touched, external: None)
            gate = threading.Event()
            nursery.start_soon(writer.call, lambda tx: gate.wait())  # holds the writer
            await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as batch:  # queued meanwhile: the next batch
                batch.start_soon(call, "before", None, False)
                batch.start_soon(call, "bug", RuntimeError("bug"), False)
                batch.start_soon(call, "bad-update", ValueError("no fit"), True)
                batch.start_soon(call, "after", None, False)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
            nursery.cancel_scope.cancel()
    finally:
        stored = {row[0] for row in conn.execute("SELECT step FROM cron_marks")}
        conn.close()
    assert outcomes["before"] == "before" and outcomes["after"] == "after"
    assert isinstance(outcomes["bug"], RuntimeError)
    assert isinstance(outcomes["bad-update"], ValueError)
    assert stored == {"before", "after"}
    assert writer.statistics().commits == 2  # the gate's batch, then one for the four


async def test_calls_made_in_the_same_moment_share_one_commit(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    # The drain pattern: a handler's end wakes its consumer's acker and its fetcher; the acks
    # and the next lease go out one scheduling pass apart and must share one commit, not take
    # two in turn.
    path = tmp_path / "motet.db"
    conn = open_writer(path, synchronous="NORMAL", busy_timeout=1, max_bytes=None)
    writer = SqliteWriter(conn, path, max_batch=64, synchronous="NORMAL")
    handler_done = trio.Event()
    done: list[str] = []

    async def acker() -> None:
        await handler_done.wait()
        done.append(await writer.call(lambda tx: "acks"))

    async def fetcher() -> None:
        await handler_done.wait()
        await trio.lowlevel.checkpoint()  # one pass later than the acker's call
        done.append(await writer.call(lambda tx: "next lease"))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.serve, clock, lambda touched, external: None)
            async with trio.open_nursery() as callers:
                callers.start_soon(acker)
                callers.start_soon(fetcher)
                await trio.testing.wait_all_tasks_blocked()
                handler_done.set()
            nursery.cancel_scope.cancel()
    finally:
        conn.close()
    assert sorted(done) == ["acks", "next lease"]
    assert writer.statistics() == CommitStatistics(commits=1, calls=2)


async def test_checkpoints_run_beside_the_writer_not_inside_its_commits(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    # A commit that takes the WAL past SQLite's 1000 pages would otherwise copy them back and
    # fsync twice before its callers hear "done".
    backend = SqliteBackend(tmp_path / "motet.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await backend.declare([sub("jobs")])
        for first in range(0, EVERY_CHANGES + 100, 100):
            await backend.publish([Envelope("jobs", {"n": first + i}, "trace") for i in range(100)])
        while backend.statistics().checkpoints == 0:
            await trio.lowlevel.checkpoint()  # the checkpoint's thread finishes on its own
        assert backend.statistics().checkpoints == 1
        assert backend._checkpointer is not None and backend._checkpointer._conn is not None
        writer = backend._writer
        assert writer is not None
        autocheckpoint = await writer.call(
            lambda tx: tx.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        )
        assert autocheckpoint == BACKSTOP_PAGES
        nursery.cancel_scope.cancel()


async def test_the_checkpoint_connection_is_opened_for_the_first_checkpoint(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    # An idle backend holds two connections (writer, reader), not three.
    backend = SqliteBackend(tmp_path / "motet.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, clock)
        await backend.declare([sub("jobs")])
        await backend.publish([Envelope("jobs", {"n": 1}, "trace")])
        assert backend._checkpointer is not None and backend._checkpointer._conn is None
        nursery.cancel_scope.cancel()


async def test_a_checkpoint_connection_that_cannot_be_opened_is_tried_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "motet.db"
    open_writer(path, synchronous="FULL", busy_timeout=1.0, max_bytes=None).close()
    attempts: list[str] = []

    def connect() -> sqlite3.Connection:
        attempts.append("open")
        if len(attempts) == 1:
            raise BackendUnavailable("sqlite backend: cannot open (a test)")
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    checkpointer = Checkpointer(connect, every=1)
    checkpointer._checkpoint()  # the failure is left to the next checkpoint and the backstop
    assert checkpointer._conn is None
    checkpointer._checkpoint()
    assert checkpointer._conn is not None
    checkpointer._checkpoint()
    assert attempts == ["open", "open"]
    checkpointer.close()
    assert checkpointer._conn is None
    checkpointer.close()  # twice is harmless


def test_backend_connections_keep_a_smaller_page_cache(tmp_path: Path) -> None:
    conn = connect(tmp_path / "motet.db", busy_timeout=1.0)
    try:
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    finally:
        conn.close()


async def test_a_writer_quiet_after_work_releases_its_cache_once(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    # Released between one and two quiet periods after the last commit, once per quiet spell.
    path = tmp_path / "motet.db"
    conn = open_writer(path, synchronous="NORMAL", busy_timeout=1, max_bytes=None)
    writer = SqliteWriter(conn, path, max_batch=64, synchronous="NORMAL", release_after=10.0)
    released: list[int] = []
    writer.after_release = lambda: released.append(writer.releases)

    async def advance(seconds: int) -> None:
        for _ in range(seconds):
            mock_clock.jump(1)
            await trio.testing.wait_all_tasks_blocked()

    async def settled(releases: int) -> None:
        while writer.releases < releases:  # the release's thread finishes on its own
            await trio.lowlevel.checkpoint()
        await trio.testing.wait_all_tasks_blocked()

    def mark(tx: Tx) -> None:
        tx.conn.execute("INSERT OR REPLACE INTO cron_marks VALUES ('s', 1.0, 2.0)")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.serve, clock, lambda touched, external: None)
            nursery.start_soon(writer.release_when_quiet)
            await advance(60)  # nothing written yet: nothing to release
            assert writer.releases == 0
            await writer.call(mark)
            for _ in range(3):  # polls for other processes' commits are not work
                await advance(3)
                await writer.probe()
            assert writer.releases == 0  # less than a quiet period since the commit
            await advance(12)  # two periods since the commit
            await settled(1)
            assert released == [1]
            await advance(60)
            assert writer.releases == 1
            # The next transaction reads its pages back: data and schema are all there.
            rows = await writer.call(
                lambda tx: tx.conn.execute("SELECT * FROM cron_marks").fetchall()
            )
            assert rows == [("s", 1.0, 2.0)]
            await advance(21)
            await settled(2)
            assert released == [1, 2]
            nursery.cancel_scope.cancel()
    finally:
        conn.close()


async def test_a_writer_told_not_to_release_keeps_its_cache(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    conn = open_writer(path, synchronous="NORMAL", busy_timeout=1, max_bytes=None)
    writer = SqliteWriter(conn, path, max_batch=64, synchronous="NORMAL", release_after=None)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.serve, clock, lambda touched, external: None)
            await writer.call(lambda tx: None)
            await writer.release_when_quiet()  # returns at once
            mock_clock.jump(3600)
            await trio.testing.wait_all_tasks_blocked()
            assert writer.releases == 0
            nursery.cancel_scope.cancel()
    finally:
        conn.close()
