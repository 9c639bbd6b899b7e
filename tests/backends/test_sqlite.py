"""The SQLite backend passes the shared backend contract (one file, two instances on it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from motet._clock import WallClock
from motet.backends._sqlite import SqliteBackend

from .contract import BackendContract


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
