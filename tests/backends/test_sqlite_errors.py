"""Bad situations end in a `BackendUnavailable` naming the file and what to do, never a
sqlite3 traceback, and never leave half a write behind."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._errors import BackendError, BackendUnavailable
from motet.backends import SqliteOptions
from motet.backends._sqlite import SqliteBackend
from motet.backends._sqlite_schema import SCHEMA_VERSION
from motet.state import StateWrite

from .contract import ContractTools, datas, env, sub
from .test_sqlite_durability import opened


async def open_fails(path: Path, clock: WallClock, **options: object) -> BackendUnavailable:
    backend = SqliteBackend(path, SqliteOptions(**options))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        with pytest.raises(BackendUnavailable) as caught:  # bare, as the runtime gets it
            await nursery.start(backend.run, clock)
    error = caught.value
    assert not isinstance(error.cause, BackendUnavailable)
    return error


async def make_database(path: Path, clock: WallClock) -> None:
    async with opened(path, clock) as backend:
        await backend.declare([sub()])
        await backend.publish([env(i) for i in range(50)])


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """chattr +i: refuses writes even to root (tests run as root, so chmod would not)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: cannot make a file unwritable for root")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def test_folder_that_cannot_be_created(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the folder should be")
    path = blocker / ".motet" / "motet.db"
    error = await open_fails(path, clock)
    assert str(blocker / ".motet") in str(error)
    assert "writable folder" in str(error)
    assert isinstance(error.cause, OSError)


async def test_path_that_is_a_directory(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    path.mkdir()
    error = await open_fails(path, clock)
    assert str(path) in str(error) and "is a directory" in str(error)


async def test_file_that_is_not_a_database(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    error = await open_fails(path, clock)
    assert str(path) in str(error)
    assert "not a SQLite database" in str(error)
    assert isinstance(error.cause, sqlite3.DatabaseError)
    assert path.read_bytes() == garbage  # left untouched


async def test_corrupt_database(tmp_path: Path, clock: WallClock, mock_clock: MockClock) -> None:
    path = tmp_path / "motet.db"
    await make_database(path, clock)
    with path.open("r+b") as file:  # keep the 100-byte header, wreck the schema page
        file.seek(100)
        file.write(b"\xde\xad\xbe\xef" * 900)
    error = await open_fails(path, clock)
    assert str(path) in str(error)
    assert "corrupt" in str(error) and "backup" in str(error)


async def test_database_of_another_program(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    conn.close()
    error = await open_fails(path, clock)
    assert "did not create" in str(error) and "users" in str(error)


async def test_schema_newer_than_this_motet(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    await make_database(path, clock)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE motet_schema SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    error = await open_fails(path, clock)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(error)
    assert "upgrade motet" in str(error)


async def test_read_only_database_file(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    path = tmp_path / "motet.db"
    await make_database(path, clock)
    with immutable(path):
        error = await open_fails(path, clock)
    assert str(path) in str(error)
    assert "writable" in str(error)


async def test_folder_where_no_file_can_be_created(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    with immutable(folder):
        error = await open_fails(folder / "motet.db", clock)
    assert str(folder / "motet.db") in str(error)
    assert "writable" in str(error)


class TestWhileRunning(ContractTools):
    quiet_seconds = 0.2

    async def test_lock_held_beyond_the_busy_timeout(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        async with opened(path, clock, busy_timeout=0.1) as backend:
            await backend.declare([s])
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another program sits on the write lock
            try:
                with pytest.raises(BackendUnavailable) as caught:
                    await backend.publish([env(1)])
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert str(path) in str(caught.value)
            assert "busy timeout" in str(caught.value)
            await backend.publish([env(2)])  # the lock is gone: writes work again
            assert datas(await self.receive_all(backend, s)) == [2]

    async def test_each_call_of_a_failed_batch_raises_its_own_error(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        # One error object raised in every caller of the batch would carry each raiser's
        # frames into the traceback the others report.
        path = tmp_path / "motet.db"
        s = sub()
        errors: dict[str, BackendUnavailable] = {}

        async def publish_a() -> None:
            try:
                await backend.publish([env("a")])
            except BackendUnavailable as exc:
                errors["a"] = exc

        async def publish_b() -> None:
            try:
                await backend.publish([env("b")])
            except BackendUnavailable as exc:
                errors["b"] = exc

        async with opened(path, clock, busy_timeout=0.1) as backend:
            await backend.declare([s])
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                async with trio.open_nursery() as callers:  # in the same moment: one batch
                    callers.start_soon(publish_a)
                    callers.start_soon(publish_b)
            finally:
                other.execute("ROLLBACK")
                other.close()
        a, b = errors["a"], errors["b"]
        assert a is not b and str(a) == str(b) and "busy timeout" in str(a)
        frames = {
            k: [f.name for f in traceback.extract_tb(e.__traceback__)] for k, e in errors.items()
        }
        assert "publish_a" in frames["a"] and "publish_b" not in frames["a"]
        assert "publish_b" in frames["b"] and "publish_a" not in frames["b"]

    async def test_exclusive_lock_refuses_opening(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        await make_database(path, clock)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        try:
            error = await open_fails(path, clock, busy_timeout=0.1)
        finally:
            other.close()
        assert str(path) in str(error) and "locked" in str(error)

    async def test_disk_full_writes_nothing(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        async with opened(path, clock, max_bytes=256 * 1024) as backend:
            await backend.declare([s])
            await backend.publish([env("small")])
            big = [env({"blob": "x" * 4096, "i": i}) for i in range(200)]
            with pytest.raises(BackendUnavailable) as caught:
                await backend.publish(big)
            assert str(path) in str(caught.value) and "full" in str(caught.value)
            with pytest.raises(BackendUnavailable):
                await backend.state_write("n", "k", StateWrite.set("y" * 400_000), trace_id="t")
            assert await backend.state_get("n", "k") is None
            depth = await backend.depth()
            assert depth[s.key].ready == 1  # none of the 200 got in
            await backend.publish([env("after")])  # smaller writes still fit
            assert datas(await self.receive_all(backend, s)) == ["small", "after"]


def test_wrong_options_are_refused() -> None:
    with pytest.raises(ValueError, match="OFF is refused"):
        SqliteOptions(synchronous="OFF")
    with pytest.raises(ValueError, match=r"\['NORMAL', 'FULL', 'EXTRA'\].*'fast'"):
        SqliteOptions(synchronous="fast")
    with pytest.raises(
        ValueError, match=r"SqliteOptions\.poll_interval must be a number of seconds > 0"
    ):
        SqliteOptions(poll_interval=0)
    with pytest.raises(
        ValueError, match=r"SqliteOptions\.busy_timeout must be a number of seconds >= 0"
    ):
        SqliteOptions(busy_timeout=-1)
    with pytest.raises(ValueError, match=r"max_batch must be an integer >= 1, got 0"):
        SqliteOptions(max_batch=0)
    with pytest.raises(ValueError, match=r"SqliteOptions\.max_bytes must be an integer >= 65536"):
        SqliteOptions(max_bytes=100)
    assert SqliteBackend("x.db", SqliteOptions(synchronous="normal")).synchronous == "NORMAL"
    assert SqliteBackend("x.db", SqliteOptions(poll_interval=None)).options.poll_interval is None


async def test_use_before_run_says_how_to_start(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "motet.db")
    with pytest.raises(BackendError, match=r"not running.*nursery\.start\(backend\.run"):
        await backend.publish([env(1)])
    with pytest.raises(BackendError, match="not running"):
        await backend.state_get("n", "k")


async def test_running_one_instance_twice_is_refused(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock, nursery: trio.Nursery
) -> None:
    backend = SqliteBackend(tmp_path / "motet.db")
    await nursery.start(backend.run, clock)
    with pytest.raises(BackendError, match="already running"):
        await nursery.start(backend.run, clock)


async def test_receive_of_an_undeclared_subscription(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    async with opened(tmp_path / "motet.db", clock) as backend:
        await backend.declare([sub(step="known")])
        with pytest.raises(BackendError, match=r"'worker@orders' is not declared.*known@orders"):
            await backend.receive(sub(), 10)
        with pytest.raises(ValueError, match="max_count"):
            await backend.receive(sub(step="known"), 0)


async def test_non_json_data_is_refused_before_anything_is_written(
    tmp_path: Path, clock: WallClock, mock_clock: MockClock
) -> None:
    async with opened(tmp_path / "motet.db", clock) as backend:
        s = sub()
        await backend.declare([s])
        with pytest.raises(BackendError, match=r"not JSON at \$\.when"):
            await backend.publish([env(1), env({"when": object()})])
        assert (await backend.depth())[s.key].ready == 0
