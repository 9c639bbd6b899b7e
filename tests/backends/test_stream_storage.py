"""Stream storage (`StreamBackend`) on the memory, SQLite and Redis backends: the shared
stream contract (tests/backends/stream_contract.py), with two instances over one storage."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import random_id
from motet.backends import MemoryBackend
from motet.backends._redis import RedisBackend
from motet.backends._sqlite import SqliteBackend
from motet.backends._sqlite_schema import SCHEMA_VERSION

from .._redis_server import RedisServer, redis_server
from .stream_contract import SharedStreamContract


class TestMemoryStreams(SharedStreamContract):
    @pytest.fixture
    async def shared(self) -> MemoryBackend:
        return MemoryBackend()

    @pytest.fixture
    async def backend(
        self, nursery: trio.Nursery, clock: WallClock, shared: MemoryBackend
    ) -> MemoryBackend:
        started: MemoryBackend = await nursery.start(shared.run, clock)
        return started

    @pytest.fixture
    async def other_instance(
        self, nursery: trio.Nursery, clock: WallClock, shared: MemoryBackend
    ) -> MemoryBackend:
        # Runtimes sharing one MemoryBackend model instances: the same object, run again.
        started: MemoryBackend = await nursery.start(shared.run, clock)
        return started


class TestSqliteStreams(SharedStreamContract):
    quiet_seconds = 0.2

    @pytest.fixture
    async def backend(
        self, nursery: trio.Nursery, clock: WallClock, tmp_path: Path
    ) -> SqliteBackend:
        started: SqliteBackend = await nursery.start(
            SqliteBackend(tmp_path / "motet.db").run, clock
        )
        return started

    @pytest.fixture
    async def other_instance(
        self, nursery: trio.Nursery, clock: WallClock, tmp_path: Path, backend: SqliteBackend
    ) -> SqliteBackend:
        started: SqliteBackend = await nursery.start(
            SqliteBackend(tmp_path / "motet.db").run, clock
        )
        return started


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


class TestRedisStreams(SharedStreamContract):
    quiet_seconds = 0.1

    @pytest.fixture
    def prefix(self) -> str:
        return "t" + random_id()[:12]

    @pytest.fixture
    async def backend(
        self, nursery: trio.Nursery, clock: WallClock, server: RedisServer, prefix: str
    ) -> RedisBackend:
        started: RedisBackend = await nursery.start(
            RedisBackend(server.url, prefix=prefix).run, clock
        )
        return started

    @pytest.fixture
    async def other_instance(
        self,
        nursery: trio.Nursery,
        clock: WallClock,
        server: RedisServer,
        prefix: str,
        backend: RedisBackend,
    ) -> RedisBackend:
        started: RedisBackend = await nursery.start(
            RedisBackend(server.url, prefix=prefix).run, clock
        )
        return started


async def test_a_version_2_file_gains_the_stream_tables(
    tmp_path: Path, nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    async with trio.open_nursery() as first:
        await first.start(SqliteBackend(path).run, clock)
        first.cancel_scope.cancel()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for table in ("stream_log", "stream_items", "stream_groups"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE motet_schema SET version = 2")
    backend: SqliteBackend = await nursery.start(SqliteBackend(path).run, clock)
    await backend.stream_set("progress", "v1", "job", {"pct": 5})
    assert (await backend.stream_items("progress", "v1")).items == [("job", {"pct": 5})]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT version FROM motet_schema").fetchall() == [(SCHEMA_VERSION,)]
