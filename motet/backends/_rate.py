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


@attrs.frozen
class Bucket:
    tokens: float
    stamp: float  # epoch seconds of the last refill


def refill(limit: RateLimit, bucket: Bucket | None, now: float) -> Bucket:
    """The bucket as of `now`.

    It holds at most `burst` whole tokens, but keeps the fraction accrued towards the next
    one: a receiver that comes for its token a few milliseconds late (scheduling, a round
    trip) does not lose those milliseconds, so a busy queue runs at the full rate, not the
    rate minus the receivers' latency. Once a whole token more than `burst` has accrued,
    the queue was idle, and the bucket is simply full."""
    if bucket is None:
        return Bucket(float(limit.burst), now)
    if now <= bucket.stamp:
        return bucket
    tokens = bucket.tokens + (now - bucket.stamp) * limit.per_second
    return Bucket(tokens if tokens < limit.burst + 1 else float(limit.burst), now)


def available(limit: RateLimit, bucket: Bucket) -> int:
    """Whole tokens in the bucket, at most `burst`: how many deliveries may be leased now."""
    whole = math.floor(bucket.tokens + limit.per_second * TOLERANCE)
    return max(0, min(whole, limit.burst))


def spend(bucket: Bucket, n: int) -> Bucket:
    return Bucket(bucket.tokens - n, bucket.stamp)


def wait(limit: RateLimit, bucket: Bucket) -> float:
    """Seconds until the bucket holds a whole token; 0 when it holds one now."""
    if available(limit, bucket) >= 1:
        return 0.0
    return max(TOLERANCE, (1.0 - bucket.tokens) / limit.per_second)
