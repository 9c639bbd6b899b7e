"""Stream storage in the SQLite file (schema version 6): the `StreamBackend` half of
`SqliteBackend`.

Three tables: `stream_groups` (each group's last event id), `stream_items` (the items) and
`stream_log` (the last `LOG_LENGTH` changes of each group, for resuming clients). An item
write, its event id and its log row are one transaction of the shared writer.

Following: `stream_log.pos` grows in commit order (writers are serialized by the file's
write lock), so a follower reads the rows past the last `pos` it saw: at once after this
process's own writes, and every `poll_interval` for other processes' (as `receive` does).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from .._envelope import JSON
from ._json_copy import json_copy
from ._protocol import StreamFollower
from ._sqlite_writer import Tx
from ._stream_records import (
    LOG_LENGTH,
    ChangeKind,
    StreamChange,
    StreamSnapshot,
    check_key,
    check_stream_name,
)

T = TypeVar("T")

FOLLOW_BATCH = 1000


def _dump(value: JSON) -> str:
    return json.dumps(value, separators=(",", ":"))


def _record(
    tx: Tx, stream: str, group: str, kind: ChangeKind, id: str | None, data: JSON
) -> StreamChange:
    (seq,) = tx.conn.execute(
        "INSERT INTO stream_groups (stream, grp, seq) VALUES (?, ?, 1) "
        "ON CONFLICT (stream, grp) DO UPDATE SET seq = seq + 1 RETURNING seq",
        (stream, group),
    ).fetchone()
    tx.conn.execute(
        "INSERT INTO stream_log (stream, grp, seq, kind, id, data) VALUES (?, ?, ?, ?, ?, ?)",
        (stream, group, seq, kind, id, _dump(data)),
    )
    if seq > LOG_LENGTH:
        tx.conn.execute(
            "DELETE FROM stream_log WHERE stream = ? AND grp = ? AND seq <= ?",
            (stream, group, seq - LOG_LENGTH),
        )
    return StreamChange(stream, group, seq, kind, id, data)


def _set(tx: Tx, stream: str, group: str, id: str, data: JSON) -> StreamChange:
    existed = tx.conn.execute(
        "SELECT 1 FROM stream_items WHERE stream = ? AND grp = ? AND id = ?", (stream, group, id)
    ).fetchone()
    tx.conn.execute(
        "INSERT INTO stream_items (stream, grp, id, data) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (stream, grp, id) DO UPDATE SET data = excluded.data",
        (stream, group, id, _dump(data)),
    )
    return _record(tx, stream, group, "update" if existed else "create", id, data)


def _delete(tx: Tx, stream: str, group: str, id: str) -> StreamChange | None:
    row = tx.conn.execute(
        "DELETE FROM stream_items WHERE stream = ? AND grp = ? AND id = ? RETURNING data",
        (stream, group, id),
    ).fetchone()
    if row is None:
        return None
    return _record(tx, stream, group, "delete", id, json.loads(row[0]))


def _items(conn: sqlite3.Connection, stream: str, group: str) -> StreamSnapshot:
    conn.execute("BEGIN")  # one read snapshot for the items and their event id
    try:
        row = conn.execute(
            "SELECT seq FROM stream_groups WHERE stream = ? AND grp = ?", (stream, group)
        ).fetchone()
        rows = conn.execute(
            "SELECT id, data FROM stream_items WHERE stream = ? AND grp = ? ORDER BY id",
            (stream, group),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    return StreamSnapshot([(k, json.loads(v)) for k, v in rows], row[0] if row else 0)


def _since(
    conn: sqlite3.Connection, stream: str, group: str, after: int
) -> list[StreamChange] | None:
    conn.execute("BEGIN")
    try:
        row = conn.execute(
            "SELECT seq FROM stream_groups WHERE stream = ? AND grp = ?", (stream, group)
        ).fetchone()
        seq = row[0] if row else 0
        if after < 0 or after > seq:
            return None
        if after == seq:
            return []
        rows = conn.execute(
            "SELECT seq, kind, id, data FROM stream_log WHERE stream = ? AND grp = ? AND seq > ? "
            "ORDER BY seq",
            (stream, group, after),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    if not rows or rows[0][0] != after + 1:
        return None
    return [_change(stream, group, *r) for r in rows]


def _change(
    stream: str, group: str, seq: int, kind: Any, id: str | None, data: str
) -> StreamChange:
    return StreamChange(stream, group, seq, kind, id, json.loads(data))


def _follow_batch(conn: sqlite3.Connection, after: int) -> list[tuple[int, StreamChange]]:
    rows = conn.execute(
        "SELECT pos, stream, grp, seq, kind, id, data FROM stream_log WHERE pos > ? "
        "ORDER BY pos LIMIT ?",
        (after, FOLLOW_BATCH),
    ).fetchall()
    return [(r[0], _change(*r[1:])) for r in rows]


class SqliteStreams:
    """The StreamBackend half of `SqliteBackend` (which provides `_write`, `_read` and
    `_poll_interval`)."""

    _poll_interval: float | None
    _write: Callable[..., Any]
    _read: Callable[..., Any]
    _stream_news: trio.Event | None = None

    def _stream_wrote(self) -> None:
        if self._stream_news is not None:
            self._stream_news.set()

    async def stream_set(self, stream: str, group: str, id: str, data: JSON) -> StreamChange:
        check_stream_name(stream)
        check_key("group", group)
        check_key("item id", id)
        stored = json_copy(data, where=f"stream {stream!r} group {group!r} item {id!r}")
        change: StreamChange = await self._write(lambda tx: _set(tx, stream, group, id, stored))
        self._stream_wrote()
        return change

    async def stream_delete(self, stream: str, group: str, id: str) -> StreamChange | None:
        check_stream_name(stream)
        check_key("group", group)
        check_key("item id", id)
        change: StreamChange | None = await self._write(lambda tx: _delete(tx, stream, group, id))
        self._stream_wrote()
        return change

    async def stream_send(
        self, stream: str, group: str, id: str | None, event: JSON
    ) -> StreamChange:
        check_stream_name(stream)
        check_key("group", group)
        if id is not None:
            check_key("item id", id)
        stored = json_copy(event, where=f"stream {stream!r} group {group!r} event")
        change: StreamChange = await self._write(
            lambda tx: _record(tx, stream, group, "event", id, stored)
        )
        self._stream_wrote()
        return change

    async def stream_get(self, stream: str, group: str, id: str) -> JSON:
        def get(conn: sqlite3.Connection) -> JSON:
            row = conn.execute(
                "SELECT data FROM stream_items WHERE stream = ? AND grp = ? AND id = ?",
                (stream, group, id),
            ).fetchone()
            return json.loads(row[0]) if row else None

        found: JSON = await self._read(get)
        return found

    async def stream_items(self, stream: str, group: str) -> StreamSnapshot:
        snapshot: StreamSnapshot = await self._read(lambda conn: _items(conn, stream, group))
        return snapshot

    async def stream_since(self, stream: str, group: str, after: int) -> list[StreamChange] | None:
        found: list[StreamChange] | None = await self._read(
            lambda conn: _since(conn, stream, group, after)
        )
        return found

    async def stream_groups(self, stream: str) -> list[str]:
        rows: list[tuple[str]] = await self._read(
            lambda conn: conn.execute(
                "SELECT grp FROM stream_groups WHERE stream = ? ORDER BY grp", (stream,)
            ).fetchall()
        )
        return [g for (g,) in rows]

    async def stream_names(self) -> list[str]:
        rows: list[tuple[str]] = await self._read(
            lambda conn: conn.execute(
                "SELECT DISTINCT stream FROM stream_groups ORDER BY 1"
            ).fetchall()
        )
        return [s for (s,) in rows]

    async def stream_follow(
        self,
        follower: StreamFollower,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        last: int = await self._read(
            lambda conn: conn.execute("SELECT coalesce(max(pos), 0) FROM stream_log").fetchone()[0]
        )
        task_status.started()
        interval = self._poll_interval if self._poll_interval is not None else 1.0
        while True:
            self._stream_news = trio.Event()
            batch: list[tuple[int, StreamChange]] = await self._read(
                functools.partial(_follow_batch, after=last)
            )
            for pos, change in batch:
                follower(change)
                last = pos
            if len(batch) < FOLLOW_BATCH:
                with trio.move_on_after(interval):
                    await self._stream_news.wait()
