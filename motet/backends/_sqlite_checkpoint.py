"""Checkpoints off the writer's path: a connection of their own copies the WAL back into the
database file in a worker thread, so a commit never waits for a checkpoint.

By default SQLite runs a checkpoint inside the commit that takes the WAL past 1000 pages: that
commit then also reads and copies those pages and fsyncs twice, and every caller of its batch
(a consumer waiting for its next lease, an emit waiting for its 2xx) waits with it. Here the
writer's own automatic checkpoint is only a backstop (`BACKSTOP_PAGES`, should this task fall
behind), and this task runs a PASSIVE checkpoint, which never blocks a writer, once the writer
has changed about `EVERY_CHANGES` rows since the last one (a row changed writes about one page
to the WAL, so this is about as often as SQLite's own trigger).

Durability does not depend on checkpoints: a commit is as durable as `synchronous` makes it
when it returns (and the checkpoint's own fsync of the WAL comes before it copies anything).

The connection is opened for the first checkpoint, not at start: an idle process does not
hold it (an SQLite connection keeps its parsed schema and buffers, about 170 KiB here). One
that cannot be opened is tried again at the next checkpoint; the writer's backstop covers
meanwhile.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable

import trio

from .._errors import BackendUnavailable

BACKSTOP_PAGES = 8000  # the writer checkpoints itself only past this many WAL pages (32 MB)
EVERY_CHANGES = 1000  # rows changed by the writer between two background checkpoints


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection (made by `connect`, in a
    worker thread, for the first checkpoint) when enough was written."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, every: int = EVERY_CHANGES
    ) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._every = every
        self._last = 0  # the writer's change count at the last checkpoint
        self._due = trio.Event()
        self.checkpoints = 0

    def committed(self, changes: int) -> None:
        """After a commit: `changes` is the writer's total count of rows changed so far."""
        if changes - self._last >= self._every:
            self._last = changes
            self._due.set()

    async def run(self) -> None:
        while True:
            await self._due.wait()
            self._due = trio.Event()
            await trio.to_thread.run_sync(self._checkpoint)
            self.checkpoints += 1

    def _checkpoint(self) -> None:
        # Busy (another process is checkpointing) or failing (the disk): the next one, or the
        # writer's backstop, copies these pages; the writer's own commits report disk errors.
        with contextlib.suppress(sqlite3.Error, BackendUnavailable):
            if self._conn is None:
                self._conn = self._connect()
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
