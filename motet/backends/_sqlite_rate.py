"""Rate limits in the SQLite file: one `rate_buckets` row per rate-limited subscription,
read and written in the writer's transaction that leases, so every process sharing the file
draws from one bucket (the sums are `_rate`'s)."""

from __future__ import annotations

from .._envelope import Delivery, RateLimit
from . import _rate as rate
from . import _sqlite_queue as q
from ._sqlite_writer import Tx

# Leased deliveries, then when the next one is due (as `_sqlite_queue.lease`), the seconds
# until the next token and whether ready messages were held back.
Limited = tuple[list[Delivery], float | None, float, bool]


def lease_limited(tx: Tx, key: str, max_count: int, seconds: float, limit: RateLimit) -> Limited:
    """Lease up to `max_count` ready rows, no more than the bucket's whole tokens, and take
    one token per row leased. With no token, lease nothing (the rows stay ready)."""
    conn = tx.conn
    row = conn.execute(
        "SELECT tokens, stamp FROM rate_buckets WHERE subscription = ?", (key,)
    ).fetchone()
    bucket = rate.refill(limit, rate.Bucket(*row) if row else None, tx.now)
    tokens = rate.available(limit, bucket)
    deliveries: list[Delivery] = []
    due: float | None = None
    if tokens:
        deliveries, due = q.lease(tx, key, min(max_count, tokens), seconds)
    bucket = rate.spend(bucket, len(deliveries))
    conn.execute(
        "INSERT INTO rate_buckets (subscription, tokens, stamp) VALUES (?, ?, ?) "
        "ON CONFLICT (subscription) DO UPDATE SET tokens = excluded.tokens, "
        "stamp = excluded.stamp",
        (key, bucket.tokens, bucket.stamp),
    )
    wait = rate.wait(limit, bucket)
    return deliveries, due, wait, bool(wait) and _backlog(tx, key)


def _backlog(tx: Tx, key: str) -> bool:
    """Whether a message of the subscription is ready (or due to be) now."""
    row = tx.conn.execute(
        "SELECT 1 FROM messages WHERE subscription = ? AND (state = 'ready' OR "
        "(state IN ('leased', 'delayed') AND due <= ?)) LIMIT 1",
        (key, tx.now),
    ).fetchone()
    return row is not None
