"""Status by message id, settled records and cancellation on SQLite (schema v4).

The live states are read from where the rows are: a `messages` row (ready / held / leased /
delayed, its `attempt` = leases so far, `error` / `traceback` of its last failure), a
`scheduled` row (a delayed emit not yet filed: `delayed` for each subscription of its
topic; cancelling deletes it) or a `dead_letters` row (`expired` when it expired
unstarted). Only settling writes: `finish` deletes the leased row as `ack` does and inserts
a `settled` row in the same statement set, only while the lease is held; expired records
are deleted now and then by the same writes (`purge`).

A lookup by id reads `messages` without an index on `id` (a scan of what is pending):
publish and ack, the hot path, pay nothing for it. bench/bench_status.py measures both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .._envelope import Delivery
from .._status import (
    CANCELLED,
    CancelOutcome,
    DeliveryStatus,
    MessageStatus,
    Settlement,
    dead_state,
    scheduled_status,
)
from . import _sqlite_queue as q
from ._sqlite_writer import Tx

_INSERT = (
    "INSERT OR REPLACE INTO settled (id, subscription, state, attempts, enqueued, started, "
    "finished, keep_until, result, note, error) "
)


def finish(
    tx: Tx,
    items: Sequence[tuple[tuple[int, int], bool, float, Settlement]],
    *,
    purge: bool = False,
) -> None:
    """Ack leased rows, keeping a settled record for each that still held its lease."""
    tx.conn.executemany(
        _INSERT + "SELECT id, subscription, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM messages "
        "WHERE seq = ? AND attempt = ? AND state = 'leased'",
        [
            (
                s.state,
                s.attempts,
                enqueued,
                s.started_at,
                s.finished_at,
                s.keep_until,
                s.result,
                s.note,
                s.error,
                *receipt,
            )
            for receipt, _, enqueued, s in items
        ],
    )
    plain = [receipt for receipt, grouped, _, _ in items if not grouped]
    grouped = [receipt for receipt, is_grouped, _, _ in items if is_grouped]
    q.ack(tx, plain, grouped)
    if purge:
        tx.conn.execute("DELETE FROM settled WHERE keep_until <= ?", (tx.now,))


def _live(row: tuple[Any, ...], now: float) -> DeliveryStatus:
    key, state, attempt, due, error, traceback, started, created = row
    if state == "leased" and due > now:
        status, due_at = "running", None
    elif state == "delayed" and due > now:
        status, due_at = ("retrying" if attempt else "delayed"), due
    else:  # ready, held behind its fifo group, a due retry or an expired lease
        status, due_at = ("retrying" if attempt else "queued"), None
    return DeliveryStatus(
        subscription=key,
        state=status,  # type: ignore[arg-type]
        attempts=attempt,
        enqueued_at=created,
        started_at=started,
        due_at=due_at,
        error=error,
        traceback=traceback,
    )


def status(conn: sqlite3.Connection, message_id: str, now: float) -> MessageStatus | None:
    found: dict[str, DeliveryStatus] = {}
    topic: str | None = None
    for row in conn.execute(
        "SELECT subscription, state, attempt, due, error, traceback, started, "
        "envelope ->> '$.created_at', envelope ->> '$.topic' FROM messages WHERE id = ?",
        (message_id,),
    ):
        found[row[0]] = _live(row[:8], now)
        topic = row[8]
    for dead_id, key, error, attempts, failed_at, traceback, created, dead_topic in conn.execute(
        "SELECT id, subscription, error, attempts, failed_at, traceback, "
        "envelope ->> '$.created_at', envelope ->> '$.topic' FROM dead_letters "
        "WHERE envelope ->> '$.id' = ? ORDER BY seq",
        (message_id,),
    ):
        topic = dead_topic
        found.setdefault(
            key,
            DeliveryStatus(
                subscription=key,
                state=dead_state(error, attempts),
                attempts=attempts,
                enqueued_at=created,
                finished_at=failed_at,
                error=error,
                traceback=traceback,
                dead_letter_id=dead_id,
            ),
        )
    # A delayed message not yet filed: one `scheduled` row for its topic, one delivery per
    # subscription of the topic.
    for key, due, created, later_topic in conn.execute(
        "SELECT s.key, d.due, d.envelope ->> '$.created_at', d.topic FROM scheduled d "
        "JOIN subscriptions s ON s.topic = d.topic WHERE d.id = ?",
        (message_id,),
    ):
        topic = later_topic
        found.setdefault(key, scheduled_status(key, due, created, now))
    for key, text_row in _settled(conn, message_id, now):
        settlement, enqueued = text_row
        found.setdefault(key, settlement.status(key, enqueued))
        if topic is None and "@" in key:
            topic = key.split("@", 1)[1]
    if not found:
        return None
    return MessageStatus(message_id, topic, tuple(found[k] for k in sorted(found)))


def _settled(
    conn: sqlite3.Connection, message_id: str, now: float
) -> list[tuple[str, tuple[Settlement, float | None]]]:
    rows = conn.execute(
        "SELECT subscription, state, attempts, enqueued, started, finished, keep_until, "
        "result, note, error FROM settled WHERE id = ? AND keep_until > ?",
        (message_id, now),
    ).fetchall()
    return [
        (key, (Settlement(state, attempts, started, finished, keep, result, note, error), enq))
        for key, state, attempts, enq, started, finished, keep, result, note, error in rows
    ]


def cancel(tx: Tx, message_id: str, keep_until: float) -> CancelOutcome:
    conn = tx.conn
    rows = conn.execute(
        "DELETE FROM messages WHERE id = ? RETURNING subscription, state, attempt, due, grp, "
        "started, envelope ->> '$.created_at'",
        (message_id,),
    ).fetchall()
    cancelled, running = [], []
    for key, state, attempt, due, group, started, created in rows:
        cancelled.append(key)
        if state == "leased" and due > tx.now:
            running.append(key)
        q._advance_group(tx, key, group)
        tx.touched.add(key)
        conn.execute(
            _INSERT + "VALUES (?, ?, 'cancelled', ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (message_id, key, attempt, created, started, tx.now, keep_until, CANCELLED),
        )
    # A delayed message not yet filed is deleted from `scheduled`, so it is never filed; its
    # idempotency key (if any) stays taken until its window ends.
    for topic, created in conn.execute(
        "DELETE FROM scheduled WHERE id = ? RETURNING topic, envelope ->> '$.created_at'",
        (message_id,),
    ).fetchall():
        for (key,) in conn.execute("SELECT key FROM subscriptions WHERE topic = ?", (topic,)):
            cancelled.append(key)
            tx.touched.add(key)  # receivers look again at when to wake
            conn.execute(
                _INSERT + "VALUES (?, ?, 'cancelled', 0, ?, NULL, ?, ?, NULL, NULL, ?)",
                (message_id, key, created, tx.now, keep_until, CANCELLED),
            )
    settled = {key for key, _ in _settled(conn, message_id, tx.now)} - set(cancelled)
    settled |= {
        key
        for (key,) in conn.execute(
            "SELECT subscription FROM dead_letters WHERE envelope ->> '$.id' = ?", (message_id,)
        )
    }
    return CancelOutcome(
        found=bool(cancelled or settled),
        cancelled=tuple(sorted(cancelled)),
        running=tuple(sorted(running)),
        settled=tuple(sorted(settled)),
    )


def cancel_requested(conn: sqlite3.Connection, deliveries: Sequence[Delivery]) -> list[Delivery]:
    out = []
    for delivery in deliveries:
        row = conn.execute(
            "SELECT 1 FROM settled WHERE id = ? AND subscription = ? AND state = 'cancelled'",
            (delivery.envelope.id, delivery.subscription),
        ).fetchone()
        if row is not None:
            out.append(delivery)
    return out
