"""Token-bucket arithmetic for rate-limited subscriptions, shared by the memory and SQLite
backends (the Redis backend does the same sums in Lua, `_redis_lua_rate`).

A subscription's bucket holds up to `burst` tokens and gains `count / period` per second of
the runtime's clock; leasing a delivery takes one token, in the same atomic write as the
lease, so every instance sharing the backend draws from one bucket. A bucket never seen is
full. Time never runs backwards for a bucket: an instance whose clock is behind the last
writer's adds nothing (its hosts' clocks must agree, as they must for leases).
"""

from __future__ import annotations

import math

import attrs

from .._envelope import RateLimit

# s of refill a token may be short of whole and still count: float epoch seconds carry
# about 0.2 µs of rounding, which must not turn "due now" into a wake-up a hair later.
TOLERANCE = 1e-6
# s of the rate a bucket keeps for receivers late for their tokens (see `refill`).
CATCH_UP = 0.05


@attrs.frozen
class Bucket:
    tokens: float
    stamp: float  # epoch seconds of the last refill


def refill(limit: RateLimit, bucket: Bucket | None, now: float) -> Bucket:
    """The bucket as of `now`.

    It holds `burst` tokens when full, plus what accrues while receivers are late for
    theirs: up to `catch_up(limit)` tokens more (at least one; 50 ms of the rate), which
    the next receiver takes at once. So a busy queue runs at the full rate, not the rate
    minus its receivers' latency (scheduling, round trips), and never gets ahead of the
    limit's schedule by more than `burst` plus 50 ms. Once more than that has accrued, the
    queue was idle, and the bucket is simply full."""
    if bucket is None:
        return Bucket(float(limit.burst), now)
    if now <= bucket.stamp:
        return bucket
    tokens = bucket.tokens + (now - bucket.stamp) * limit.per_second
    if tokens >= limit.burst + catch_up(limit):
        tokens = float(limit.burst)
    return Bucket(tokens, now)


def catch_up(limit: RateLimit) -> float:
    """Tokens a bucket keeps beyond `burst` for late receivers (see `refill`)."""
    return max(1.0, limit.per_second * CATCH_UP)


def available(limit: RateLimit, bucket: Bucket) -> int:
    """Whole tokens in the bucket: how many deliveries may be leased now."""
    return max(0, math.floor(bucket.tokens + limit.per_second * TOLERANCE))


def spend(bucket: Bucket, n: int) -> Bucket:
    return Bucket(bucket.tokens - n, bucket.stamp)


def wait(limit: RateLimit, bucket: Bucket) -> float:
    """Seconds until the bucket holds a whole token; 0 when it holds one now."""
    if available(limit, bucket) >= 1:
        return 0.0
    return max(TOLERANCE, (1.0 - bucket.tokens) / limit.per_second)
