"""The SQLite backend passes the shared backend contract (one file, two instances on it),
and upgrades files written by earlier versions."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
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
        conn.execute("DROP TABLE dead_letters")
        conn.execute(_V1_DEAD_LETTERS)
        conn.executemany(
            "INSERT INTO dead_letters (id, subscription, envelope, error, attempts, failed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
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
    assert SCHEMA_VERSION >= 2  # later versions chain more upgrade steps after this one


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
