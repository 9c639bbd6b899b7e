"""The SQLite backend's delayed emits, idempotency keys and expiry, run inside the writer's
shared transaction (the tables are described in `_sqlite_schema`).

A delayed message is one `scheduled` row (per topic, not per subscription) until it is due;
the first lease of any subscription of its topic after that files it in the queues of the
topic's subscriptions, in the same transaction that deletes it, so it is filed once
however many processes share the file. An idempotency key is a row of `idempotency_keys`
(topic, key) -> (first id, until): the writer's transaction makes "look, then take" atomic.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import attrs

from .._envelope import (
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    expired_error,
    expiry_of,
    new_id,
)
from . import _sqlite_queue as q
from ._sqlite_writer import Tx


def publish(
    tx: Tx, envelopes: Sequence[Envelope], items: Sequence[q.Encoded], window: float
) -> list[str]:
    """Publish with keys and delays (see `QueueBackend.publish`); returns the ids."""
    ids: list[str] = []
    now: list[q.Encoded] = []  # immediate messages, published in order in runs
    for envelope, item in zip(envelopes, items, strict=True):
        if envelope.key is not None:
            row = tx.conn.execute(
                "SELECT id, until FROM idempotency_keys WHERE topic = ? AND key = ?",
                (envelope.topic, envelope.key),
            ).fetchone()
            if row is not None and tx.now < row[1]:
                ids.append(row[0])
                continue
            tx.conn.execute(
                "INSERT OR REPLACE INTO idempotency_keys (topic, key, id, until) "
                "VALUES (?, ?, ?, ?)",
                (envelope.topic, envelope.key, envelope.id, tx.now + window),
            )
            _forget_keys(tx)
        ids.append(envelope.id)
        if envelope.not_before is not None and envelope.not_before > tx.now:
            q.publish(tx, now)
            now = []
            _schedule(tx, envelope, item)
        else:
            now.append(item)
    q.publish(tx, now)
    return ids


def _forget_keys(tx: Tx) -> None:
    """Delete a few keys whose window ended: each new key pays for the ones it outlives."""
    tx.conn.execute(
        "DELETE FROM idempotency_keys WHERE (topic, key) IN (SELECT topic, key FROM "
        "idempotency_keys WHERE until <= ? ORDER BY until LIMIT 4)",
        (tx.now,),
    )


def _schedule(tx: Tx, envelope: Envelope, item: q.Encoded) -> None:
    subs = tx.subscribers.get(envelope.topic)
    if subs is None:  # the same cache `_sqlite_queue.publish` fills
        subs = tx.subscribers[envelope.topic] = tx.conn.execute(
            "SELECT key, strategy FROM subscriptions WHERE topic = ?", (envelope.topic,)
        ).fetchall()
    if not subs:
        return  # nobody subscribes: dropped, as a publish would drop it
    tx.conn.execute(
        "INSERT INTO scheduled (topic, id, envelope, due) VALUES (?, ?, ?, ?)",
        (envelope.topic, envelope.id, item.json, envelope.not_before),
    )
    tx.touched.update(key for key, _ in subs)  # receivers look again at when to wake


def file_due(tx: Tx, topic: str) -> None:
    """File the delayed messages of `topic` whose time came in its subscriptions' queues."""
    rows = tx.conn.execute(
        "DELETE FROM scheduled WHERE topic = ? AND due <= ? RETURNING seq, due, envelope",
        (topic, tx.now),
    ).fetchall()
    if not rows:
        return
    rows.sort(key=lambda r: (r[1], r[0]))  # RETURNING has no order
    items = []
    for _, _, text in rows:
        raw = json.loads(text)
        group, priority = raw.get("group"), raw.get("priority", 0)
        items.append(q.Encoded(raw["topic"], raw["id"], group, priority, text))
    q.publish(tx, items)


def next_due(tx: Tx, key: str) -> float | None:
    """When the next delayed message of this subscription's topic is due, or None."""
    row = tx.conn.execute(
        "SELECT min(due) FROM scheduled WHERE topic = "
        "(SELECT topic FROM subscriptions WHERE key = ?)",
        (key,),
    ).fetchone()
    return None if row is None else row[0]


def expire(tx: Tx, deliveries: list[Delivery], ttl: float | None) -> list[Delivery]:
    """Take out of `deliveries` (just leased) those handed out for the first time after their
    expiry: each becomes a dead letter (attempts 0) in this transaction."""
    kept: list[Delivery] = []
    for delivery in deliveries:
        deadline = None
        if delivery.attempt == 1:
            deadline = expiry_of(delivery.envelope, ttl)
        if deadline is None:
            kept.append(delivery)
            continue
        if deadline > tx.now:
            redriven = tx.conn.execute(
                "SELECT redriven FROM messages WHERE seq = ?", (q.parse_receipt(delivery)[0],)
            ).fetchone()
            if redriven is not None and not redriven[0]:
                delivery = attrs.evolve(delivery, expires_at=deadline)
            kept.append(delivery)
            continue
        seq, attempt = q.parse_receipt(delivery)
        row = tx.conn.execute(
            "DELETE FROM messages WHERE seq = ? AND attempt = ? AND redriven = 0 "
            "RETURNING subscription, grp, envelope",
            (seq, attempt),
        ).fetchone()
        if row is None:
            kept.append(delivery)  # a re-driven copy: it never expires
            continue
        key, group, text = row
        letter = DeadLetter(new_id(), key, delivery.envelope, expired_error(deadline), 0, tx.now)
        tx.conn.execute(
            "INSERT INTO dead_letters (id, subscription, envelope, error, attempts, failed_at, "
            "traceback) VALUES (?, ?, ?, ?, 0, ?, NULL)",
            (letter.id, key, text, letter.error, tx.now),
        )
        q._advance_group(tx, key, group)
    return kept


def lease(
    tx: Tx, key: str, max_count: int, seconds: float, ttl: float | None
) -> tuple[list[Delivery], float | None]:
    """`_sqlite_queue.lease`, after filing the delayed messages of the subscription's topic
    that came due, and without the messages that expired (buried in the same transaction,
    then more are leased in their place)."""
    row = tx.conn.execute("SELECT topic FROM subscriptions WHERE key = ?", (key,)).fetchone()
    if row is not None:  # (an undeclared one: `lease` says so)
        file_due(tx, row[0])
    kept: list[Delivery] = []
    while True:
        deliveries, due = q.lease(tx, key, max_count - len(kept), seconds)
        if not deliveries:
            if kept:
                return kept, None
            later = next_due(tx, key)
            if later is not None and (due is None or later < due):
                due = later
            return [], due
        fresh = expire(tx, deliveries, ttl)
        kept += fresh
        # Expired ones make room (and may unblock a fifo group): lease more in their place.
        if len(fresh) == len(deliveries) or len(kept) >= max_count:
            return kept, None


def scheduled_counts(conn: sqlite3.Connection, now: float) -> dict[str, tuple[int, int]]:
    """Per subscription key: delayed messages of its topic (not yet due, due but not yet
    filed: those count as ready)."""
    rows = conn.execute(
        "SELECT s.key, d.due <= ?, count(*) FROM scheduled d "
        "JOIN subscriptions s ON s.topic = d.topic GROUP BY 1, 2",
        (now,),
    )
    counts: dict[str, tuple[int, int]] = {}
    for key, is_due, n in rows:
        later, due = counts.get(key, (0, 0))
        counts[key] = (later, due + n) if is_due else (later + n, due)
    return counts


def depth(conn: sqlite3.Connection, now: float) -> dict[str, QueueDepth]:
    """`_sqlite_queue.depth`, with each subscription's delayed messages: `scheduled` until
    due, then ready (filed at the next lease)."""
    depths = q.depth(conn, now)
    for key, (scheduled, due) in scheduled_counts(conn, now).items():
        if key in depths:
            d = depths[key]
            depths[key] = attrs.evolve(d, ready=d.ready + due, scheduled=scheduled)
    return depths
