"""Processes started together on a fresh project open the same new SQLite files at the same
moment (`motet start --instances N`, a cluster of instances, an emit beside a start). Every one
of them must get the file: SQLite answers one of two connections switching a new file to WAL
"database is locked" at once, without waiting, and `switch_to_wal` waits that out.

Threads stand in for processes here (each opens its own connection, as a process does). The
race is timing-dependent: before the fix, about one round in fifteen of six openers failed, so
forty rounds fail with near certainty if the waiting is removed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from motet.backends._sqlite_schema import open_writer
from motet.observe._sqlite_store import SqliteTelemetryStore

ROUNDS = 40
OPENERS = 6


def open_at_once(folder: Path, open_file: Callable[[Path], object]) -> list[BaseException]:
    """Start OPENERS threads that open `folder`'s file at the same moment; their errors."""
    barrier = threading.Barrier(OPENERS)
    errors: list[BaseException] = []

    def opener() -> None:
        barrier.wait()
        try:
            open_file(folder)
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def open_queue_file(folder: Path) -> None:
    open_writer(folder / "motet.db", synchronous="NORMAL", busy_timeout=5.0, max_bytes=None).close()


def open_telemetry_file(folder: Path) -> None:
    SqliteTelemetryStore(folder / "telemetry.db").close()


@pytest.mark.parametrize("open_file", [open_queue_file, open_telemetry_file])
def test_openers_of_a_new_file_at_the_same_moment_all_get_it(
    tmp_path: Path, open_file: Callable[[Path], None]
) -> None:
    for n in range(ROUNDS):
        folder = tmp_path / str(n)
        folder.mkdir()
        assert open_at_once(folder, open_file) == []
