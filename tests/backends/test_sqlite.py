"""The SQLite backend passes the shared backend contract (one file, two instances on it),
and upgrades files written by earlier versions."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet.backends._protocol import TICK_MARK_RETENTION
from motet.backends._sqlite import SqliteBackend
from motet.backends._sqlite_schema import SCHEMA_VERSION

from .contract import BackendContract, env, limited, sub
from .test_sqlite_durability import opened


class TestSqliteContract(BackendContract):
    # A commit is an fsync in a worker thread; on a busy VM that can take tens of ms, and
    # the contract decides "receive would block" after this much real quiet time.
    quiet_seconds = 0.2

    @pytest.fixture
    async def backend(
        self, nursery: trio.Nursery, clock: WallClock, tmp_path: Path
    ) -> SqliteBackend:
        backend: SqliteBackend = await nursery.start(
            SqliteBackend(tmp_path / "motet.db").run, clock
        )
        return backend

    @pytest.fixture
    async def other_instance(
        self, nursery: trio.Nursery, clock: WallClock, tmp_path: Path, backend: SqliteBackend
    ) -> SqliteBackend:
        other: SqliteBackend = await nursery.start(SqliteBackend(tmp_path / "motet.db").run, clock)
        return other


# The dead_letters table as schema version 1 made it (before tracebacks were kept).
_V1_DEAD_LETTERS = """
CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subscription TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at REAL NOT NULL
)
"""


async def test_a_version_1_file_gains_dead_letter_tracebacks_and_keeps_its_letters(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    s = sub()
    async with opened(path, clock) as backend:
        await backend.declare([s])
        await backend.publish([env({"n": 1}), env({"n": 2})])
        old, _fresh = await backend.receive(s, 2)
        await backend.bury(old, error="KeyError: 'items'")
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        rows = conn.execute(
            "SELECT id, subscription, envelope, error, attempts, failed_at FROM dead_letters"
        ).fetchall()
        _back_to_version_2(conn)
        conn.execute("DROP TABLE dead_letters")
        conn.execute(_V1_DEAD_LETTERS)
        conn.executemany(
            "INSERT INTO dead_letters (id, subscription, envelope, error, attempts, failed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        _undo_v4(conn)
        conn.execute("UPDATE motet_schema SET version = 1")

    async with opened(path, clock) as backend:
        [kept] = await backend.dead_letters()
        assert (kept.envelope.data, kept.error, kept.traceback) == (
            {"n": 1},
            "KeyError: 'items'",
            None,
        )
        mock_clock.jump(60)  # `_fresh`'s lease ran out with the process that held it
        [again] = await backend.receive(s, 1)
        letter = await backend.bury(again, error="E", traceback="Traceback ...\nE")
        assert [x.traceback for x in await backend.dead_letters()] == [None, "Traceback ...\nE"]
        assert await backend.redrive([kept.id, letter.id]) == 2
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM motet_schema").fetchall() == [(SCHEMA_VERSION,)]
    assert SCHEMA_VERSION >= 3  # later versions chain more upgrade steps after this one


def _back_to_version_2(conn: sqlite3.Connection) -> None:
    """Undo version 3 (delayed emits, idempotency keys, re-driven copies)."""
    conn.execute("DROP TABLE scheduled")
    conn.execute("DROP TABLE idempotency_keys")
    conn.execute("ALTER TABLE messages DROP COLUMN redriven")


async def test_a_version_2_file_gains_delayed_emits_and_keeps_its_messages(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    s = sub()
    async with opened(path, clock) as backend:
        await backend.declare([s])
        await backend.publish([env({"n": 1})])
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        _back_to_version_2(conn)
        conn.execute("UPDATE motet_schema SET version = 2")
    async with opened(path, clock) as backend:
        later = attrs.evolve(env({"n": 2}), not_before=clock.now() + 5, key="k")
        assert await backend.publish([later]) == [later.id]
        [first] = await backend.receive(s, 10)
        assert first.envelope.data == {"n": 1}
        mock_clock.jump(6)
        [second] = await backend.receive(s, 10)
        assert second.envelope == later
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM motet_schema").fetchall() == [(SCHEMA_VERSION,)]


async def test_idempotency_keys_past_their_window_are_forgotten(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    async with opened(path, clock) as backend:
        await backend.declare([sub()])
        for n in range(8):
            await backend.publish([attrs.evolve(env(n), key=f"k{n}")], dedup_window=1)
        mock_clock.jump(2)
        for n in range(3):  # each new key deletes up to 4 that ran out
            await backend.publish([attrs.evolve(env(n), key=f"new{n}")], dedup_window=60)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM idempotency_keys ORDER BY key")]
    assert keys == ["new0", "new1", "new2"]


async def test_a_version_2_file_gains_rate_buckets_and_keeps_its_messages(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    s = limited("1/m")
    async with opened(path, clock) as backend:
        await backend.declare([s])
        await backend.publish([env("a"), env("b")])
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE rate_buckets")
        _back_to_version_2(conn)
        conn.execute("UPDATE motet_schema SET version = 2")

    async with opened(path, clock) as backend:
        got = await backend.receive_limited(s, 10)
        assert [d.envelope.data for d in got.deliveries] == ["a"]
        throttled = await backend.receive_limited(s, 10)
        assert (throttled.deliveries, throttled.waiting) == ([], True)
        assert throttled.wait == pytest.approx(60)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM motet_schema").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT count(*) FROM rate_buckets").fetchall() == [(1,)]


def _undo_v4(conn: sqlite3.Connection) -> None:
    """Make a fresh file look like one written before schema v4 (message status)."""
    conn.execute("DROP TABLE settled")
    conn.execute("ALTER TABLE messages DROP COLUMN started")
    conn.execute("ALTER TABLE messages DROP COLUMN traceback")


async def test_a_version_2_file_gains_message_status_and_keeps_its_messages(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    s = sub()
    async with opened(path, clock) as backend:
        await backend.declare([s])
        sent = env({"n": 1})
        await backend.publish([sent])
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        _undo_v4(conn)
        conn.execute("UPDATE motet_schema SET version = 2")
    async with opened(path, clock) as backend:
        status = await backend.message_status(sent.id)
        assert status is not None and status.deliveries[0].state == "queued"
        [delivery] = await backend.receive(s, 1)
        assert delivery.envelope == sent
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM motet_schema").fetchall() == [(SCHEMA_VERSION,)]


async def test_cron_marks_keep_a_week_not_the_whole_history(
    clock: WallClock, tmp_path: Path
) -> None:
    # An every-hour cron for 30 days: 720 claims, of which a week's and one stay stored.
    path = tmp_path / "motet.db"
    start = 1_767_225_600.0
    async with opened(path, clock) as backend:
        for hour in range(720):
            assert await backend.claim_tick("hourly", start + hour * 3600) is True
        assert await backend.claim_tick("daily", start) is True
        assert await backend.last_tick("hourly") == start + 719 * 3600
    with contextlib.closing(sqlite3.connect(path)) as conn:
        kept = sorted(
            s
            for (s,) in conn.execute("SELECT scheduled FROM cron_marks WHERE step = ?", ("hourly",))
        )
        others = conn.execute("SELECT count(*) FROM cron_marks WHERE step = 'daily'").fetchone()
    assert len(kept) == 7 * 24 + 1
    assert kept[0] == start + 719 * 3600 - TICK_MARK_RETENTION
    assert others == (1,)
