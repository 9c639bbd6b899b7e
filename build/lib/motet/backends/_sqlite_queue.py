"""The queue's SQL, run inside the writer's shared transaction (or on the reader connection).

Each (message, subscription) is one `messages` row; the states and columns are described in
`_sqlite_schema`. A receipt is "seq:attempt": `seq` is never reused and `attempt` grows on every
lease, so a receipt names exactly one lease, and an ack/extend/retry/bury with a receipt
whose lease was lost matches no row and does nothing.

fifo keeps one invariant per (subscription, group): only the oldest row of the group is not
`held`. So "at most one leased-or-delayed per group, in publish order" costs no scan: leasing
only ever looks at `ready` rows, and removing a group's head un-holds the next one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import attrs

from .._envelope import DeadLetter, Delivery, Envelope, QueueDepth, Subscription, new_id
from .._errors import BackendError
from ._json_copy import json_copy
from ._protocol import Announce
from ._sqlite_writer import Tx


@attrs.frozen
class Encoded:
    """An envelope turned into its row values, done in the caller's task (errors surface there)."""

    topic: str
    id: str
    group: str | None
    priority: int
    json: str


def encode(envelope: Envelope) -> Encoded:
    # json_copy refuses what JSON cannot hold with the same BackendError as the memory
    # backend (json.dumps alone would quietly turn an int key into a string).
    data = json_copy(envelope.data, where=f"message {envelope.id} on topic {envelope.topic!r}")
    raw = {
        "topic": envelope.topic,
        "data": data,
        "trace_id": envelope.trace_id,
        "id": envelope.id,
        "group": envelope.group,
        "priority": envelope.priority,
        "created_at": envelope.created_at,
    }
    text = json.dumps(raw, separators=(",", ":"))
    return Encoded(envelope.topic, envelope.id, envelope.group, envelope.priority, text)


def decode(text: str) -> Envelope:
    raw: dict[str, Any] = json.loads(text)
    return Envelope(**raw)


def receipt_of(seq: int, attempt: int) -> str:
    return f"{seq}:{attempt}"


def parse_receipt(delivery: Delivery) -> tuple[int, int]:
    seq, sep, attempt = delivery.receipt.partition(":")
    if not (sep and seq.isdigit() and attempt.isdigit()):
        raise ValueError(
            f"delivery of message {delivery.envelope.id} has receipt {delivery.receipt!r}, "
            "expected 'seq:attempt' as issued by the sqlite backend"
        )
    return int(seq), int(attempt)


def declare(tx: Tx, subscriptions: Sequence[Subscription]) -> None:
    tx.subscribers.clear()
    tx.conn.executemany(
        "INSERT INTO subscriptions (key, topic, step, strategy, options) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET topic = excluded.topic, step = excluded.step, "
        "strategy = excluded.strategy, options = excluded.options",
        [
            (s.key, s.topic, s.step, s.options.strategy, json.dumps(attrs.asdict(s.options)))
            for s in subscriptions
        ],
    )


def publish(tx: Tx, items: Sequence[Encoded]) -> None:
    """Copy each message into the queue of every subscription of its topic (from the file,
    so subscriptions declared by other processes count)."""
    subscribers = tx.subscribers
    rows: list[tuple[Any, ...]] = []
    open_groups: set[tuple[str, str]] = set()
    for item in items:
        subs = subscribers.get(item.topic)
        if subs is None:
            subs = subscribers[item.topic] = tx.conn.execute(
                "SELECT key, strategy FROM subscriptions WHERE topic = ?", (item.topic,)
            ).fetchall()
        for key, strategy in subs:
            rows.append(_row(tx, key, strategy, item, open_groups))
    _insert(tx, rows)


def _row(
    tx: Tx, key: str, strategy: str, item: Encoded, open_groups: set[tuple[str, str]]
) -> tuple[Any, ...]:
    group = item.group if strategy == "fifo" else None
    state = "ready"
    if group is not None:
        if (key, group) in open_groups or _group_pending(tx.conn, key, group):
            state = "held"
        open_groups.add((key, group))
    priority = item.priority if strategy == "priority" else 0
    tx.touched.add(key)
    return (key, item.id, item.json, group, priority, state, tx.now)


def _insert(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    tx.conn.executemany(
        "INSERT INTO messages (subscription, id, envelope, grp, priority, state, attempt, due) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
        rows,
    )


def _group_pending(conn: sqlite3.Connection, key: str, group: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE subscription = ? AND grp = ? LIMIT 1", (key, group)
    ).fetchone()
    return row is not None


def _advance_group(tx: Tx, key: str, group: str | None) -> None:
    """The head of a fifo group left the queue: the next message of the group may go."""
    if group is None:
        return
    tx.conn.execute(
        "UPDATE messages SET state = 'ready' WHERE seq = (SELECT min(seq) FROM messages "
        "WHERE subscription = ? AND grp = ?) AND state = 'held'",
        (key, group),
    )
    tx.touched.add(key)


def lease(tx: Tx, key: str, max_count: int, seconds: float) -> tuple[list[Delivery], float | None]:
    """Lease up to `max_count` ready rows; with none, also say when the next one is due."""
    conn = tx.conn
    if conn.execute("SELECT 1 FROM subscriptions WHERE key = ?", (key,)).fetchone() is None:
        known = ", ".join(k for (k,) in conn.execute("SELECT key FROM subscriptions")) or "none"
        raise BackendError(
            f"subscription {key!r} is not declared in the sqlite backend (declared: {known}); "
            "call `declare` first"
        )
    # Retries whose time has come and leases that ran out become ready again (in place, so
    # they keep their publish order and their attempt count).
    conn.execute(
        "UPDATE messages SET state = 'ready' WHERE subscription = ? "
        "AND state IN ('leased', 'delayed') AND due <= ?",
        (key, tx.now),
    )
    rows = conn.execute(
        "UPDATE messages SET state = 'leased', attempt = attempt + 1, due = ? WHERE seq IN "
        "(SELECT seq FROM messages WHERE subscription = ? AND state = 'ready' "
        "ORDER BY priority DESC, seq LIMIT ?) RETURNING seq, priority, attempt, envelope",
        (tx.now + seconds, key, max_count),
    ).fetchall()
    if rows:
        rows.sort(key=lambda r: (-r[1], r[0]))  # RETURNING has no order
        deliveries = [
            Delivery(decode(text), key, attempt, receipt_of(seq, attempt))
            for seq, _, attempt, text in rows
        ]
        return deliveries, None
    row = conn.execute(
        "SELECT min(due) FROM messages WHERE subscription = ? AND state IN ('leased', 'delayed')",
        (key,),
    ).fetchone()
    return [], row[0]


def release(tx: Tx, receipts: Sequence[tuple[int, int]]) -> None:
    """Give back leases nobody started (a cancelled receiver, a graceful stop): as if never
    delivered."""
    for receipt in receipts:
        row = tx.conn.execute(
            "UPDATE messages SET state = 'ready', attempt = attempt - 1 "
            "WHERE seq = ? AND attempt = ? AND state = 'leased' RETURNING subscription",
            receipt,
        ).fetchone()
        if row is not None:
            tx.touched.add(row[0])


def ack(tx: Tx, receipts: Sequence[tuple[int, int]], grouped: Sequence[tuple[int, int]]) -> None:
    """Forget leased rows. `grouped` are those whose envelope has a group: only they may
    be the head of a fifo group, so only they need the (slower) check for a next message."""
    tx.conn.executemany(
        "DELETE FROM messages WHERE seq = ? AND attempt = ? AND state = 'leased'", receipts
    )
    for seq, attempt in grouped:
        row = tx.conn.execute(
            "DELETE FROM messages WHERE seq = ? AND attempt = ? AND state = 'leased' "
            "RETURNING subscription, grp",
            (seq, attempt),
        ).fetchone()
        if row is not None:
            _advance_group(tx, row[0], row[1])


def extend(tx: Tx, receipts: Sequence[tuple[int, int]], seconds: float) -> None:
    tx.conn.executemany(
        "UPDATE messages SET due = ? WHERE seq = ? AND attempt = ? AND state = 'leased'",
        [(tx.now + seconds, seq, attempt) for seq, attempt in receipts],
    )


def retry(tx: Tx, key: str, receipt: tuple[int, int], delay: float, error: str) -> None:
    tx.conn.execute(
        "UPDATE messages SET state = 'delayed', due = ?, error = ? "
        "WHERE seq = ? AND attempt = ? AND state = 'leased'",
        (tx.now + max(0.0, delay), error, *receipt),
    )
    tx.touched.add(key)  # receivers re-read the next due time


def bury(
    tx: Tx,
    delivery: Delivery,
    receipt: tuple[int, int],
    error: str,
    traceback: str | None,
    announce: Announce | None,
) -> DeadLetter | None:
    """Move a leased message to the dead letters, and publish its announcement in the same
    transaction; None (and nothing written) when its lease was lost."""
    row = tx.conn.execute(
        "DELETE FROM messages WHERE seq = ? AND attempt = ? AND state = 'leased' "
        "RETURNING subscription, grp, envelope",
        receipt,
    ).fetchone()
    if row is None:
        return None  # the lease was lost: the message belongs to its new holder
    key, group, text = row
    letter = DeadLetter(new_id(), key, decode(text), error, delivery.attempt, tx.now, traceback)
    tx.conn.execute(
        "INSERT INTO dead_letters (id, subscription, envelope, error, attempts, failed_at, "
        "traceback) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (letter.id, key, text, error, letter.attempts, letter.failed_at, traceback),
    )
    _advance_group(tx, key, group)
    if announce is not None:
        # Raising here (a payload that is not JSON) rolls the whole burial back.
        publish(tx, [encode(announce(letter))])
    return letter


def redrive(tx: Tx, ids: Sequence[str]) -> int:
    count = 0
    open_groups: set[tuple[str, str]] = set()
    for dead_id in dict.fromkeys(ids):
        row = tx.conn.execute(
            "DELETE FROM dead_letters WHERE id = ? RETURNING subscription, envelope", (dead_id,)
        ).fetchone()
        if row is None:
            continue
        key, text = row
        found = tx.conn.execute(
            "SELECT strategy FROM subscriptions WHERE key = ?", (key,)
        ).fetchone()
        envelope = decode(text)
        item = Encoded(envelope.topic, envelope.id, envelope.group, envelope.priority, text)
        _insert(tx, [_row(tx, key, found[0] if found else "standard", item, open_groups)])
        count += 1
    return count


def discard(tx: Tx, ids: Sequence[str]) -> int:
    cursor = tx.conn.executemany(
        "DELETE FROM dead_letters WHERE id = ?", [(i,) for i in dict.fromkeys(ids)]
    )
    return max(0, cursor.rowcount)


def dead_letters(conn: sqlite3.Connection, key: str | None, limit: int) -> list[DeadLetter]:
    where, args = ("WHERE subscription = ?", (key,)) if key is not None else ("", ())
    rows = conn.execute(
        "SELECT id, subscription, envelope, error, attempts, failed_at, traceback "
        f"FROM dead_letters {where} ORDER BY seq LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [DeadLetter(i, s, decode(e), err, a, f, tb) for i, s, e, err, a, f, tb in rows]


def depth(conn: sqlite3.Connection, now: float) -> dict[str, QueueDepth]:
    counts: dict[str, dict[str, int]] = {
        key: {"ready": 0, "leased": 0, "delayed": 0, "dead": 0}
        for (key,) in conn.execute("SELECT key FROM subscriptions")
    }
    rows = conn.execute(
        "SELECT subscription, state, due <= ?, count(*) FROM messages GROUP BY 1, 2, 3", (now,)
    )
    for key, state, is_due, n in rows:
        # held (fifo, behind its group's head) waits like ready; an expired lease or a retry
        # whose time has come is ready again.
        column = "ready" if state == "held" or (is_due and state != "ready") else state
        bucket = counts.setdefault(key, {"ready": 0, "leased": 0, "delayed": 0, "dead": 0})
        bucket[column] += n
    for key, n in conn.execute("SELECT subscription, count(*) FROM dead_letters GROUP BY 1"):
        counts.setdefault(key, {"ready": 0, "leased": 0, "delayed": 0, "dead": 0})["dead"] += n
    return {key: QueueDepth(**c) for key, c in sorted(counts.items())}
