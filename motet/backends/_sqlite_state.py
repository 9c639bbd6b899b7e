"""State documents and cron marks in SQL.

A state write and the change event it publishes for state triggers are written in the same
transaction (the writer's), so a committed change always has its event queued and a rolled
back one has neither: a state trigger is never lost nor fired for a change that did not stick.
"""

from __future__ import annotations

import json
import sqlite3

from .._envelope import JSON
from .._state_writes import StateChange, StateWrite, change_event, state_change
from ._json_copy import json_copy, json_equal
from ._protocol import TICK_MARK_RETENTION
from ._sqlite_queue import encode, publish
from ._sqlite_writer import Tx


def _load(text: str | None) -> JSON:
    return None if text is None else json.loads(text)


def state_get(conn: sqlite3.Connection, namespace: str, key: str) -> JSON:
    row = conn.execute(
        "SELECT value FROM state WHERE namespace = ? AND key = ?", (namespace, key)
    ).fetchone()
    return _load(row[0] if row else None)


def state_write(tx: Tx, namespace: str, key: str, write: StateWrite, trace_id: str) -> StateChange:
    old = state_get(tx.conn, namespace, key)
    # apply() raises ValueError for an op that does not fit the document; the writer's
    # savepoint then leaves the stored value as it was.
    new = json_copy(write.apply(old), where=f"state {namespace!r} key {key!r}")
    return _store(tx, namespace, key, old, new, trace_id)


def _store(tx: Tx, namespace: str, key: str, old: JSON, new: JSON, trace_id: str) -> StateChange:
    if json_equal(old, new):
        return state_change(namespace, key, old, new, changed=False)
    if new is None:
        tx.conn.execute("DELETE FROM state WHERE namespace = ? AND key = ?", (namespace, key))
    else:
        tx.conn.execute(
            "INSERT INTO state (namespace, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            (namespace, key, json.dumps(new, separators=(",", ":"))),
        )
    change = state_change(namespace, key, old, new)
    publish(tx, [encode(change_event(change, trace_id, tx.now))])
    return change


def state_list(conn: sqlite3.Connection, namespace: str) -> list[tuple[str, JSON]]:
    rows = conn.execute(
        "SELECT key, value FROM state WHERE namespace = ? ORDER BY key", (namespace,)
    ).fetchall()
    return [(key, json.loads(value)) for key, value in rows]


def state_groups(conn: sqlite3.Connection) -> list[str]:
    return [ns for (ns,) in conn.execute("SELECT DISTINCT namespace FROM state ORDER BY 1")]


def state_clear(tx: Tx, namespace: str, trace_id: str) -> int:
    rows = state_list(tx.conn, namespace)
    for key, value in rows:
        _store(tx, namespace, key, value, None, trace_id)
    return len(rows)


def claim_tick(tx: Tx, step: str, scheduled: float) -> bool:
    cursor = tx.conn.execute(
        "INSERT OR IGNORE INTO cron_marks (step, scheduled, claimed_at) VALUES (?, ?, ?)",
        (step, float(scheduled), tx.now),
    )
    if cursor.rowcount != 1:
        return False
    # Marks older than the retention behind this tick go (about one per claim of a
    # regular schedule): the table holds a week of an every-minute cron, not its history.
    tx.conn.execute(
        "DELETE FROM cron_marks WHERE step = ? AND scheduled < ?",
        (step, float(scheduled) - TICK_MARK_RETENTION),
    )
    return True


def last_tick(conn: sqlite3.Connection, step: str) -> float | None:
    row = conn.execute("SELECT max(scheduled) FROM cron_marks WHERE step = ?", (step,)).fetchone()
    return None if row is None or row[0] is None else float(row[0])
