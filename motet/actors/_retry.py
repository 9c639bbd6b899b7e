"""Retries as a policy object: how long to wait before attempt n+1, and when to give up."""

from __future__ import annotations

import random

import attrs

from .._backoff import Backoff
from .._envelope import QueueOptions

# QueueOptions' defaults: 1 s, doubling, at most 300 s, spread by ±10 %.
DEFAULT_BACKOFF = Backoff(initial=1.0, cap=300.0, jitter=0.1)
# The jitter's source unless a policy is given its own (a seeded one, in tests): one for
# every step, as a Random holds 2.5 KiB of state and only spreads retries apart.
SHARED_RNG = random.Random()


@attrs.frozen
class RetryPolicy:
    """`max_retries` retries after the first attempt; the wait before retry n is the
    `backoff`'s n-th delay (by default from 1 s, doubling, capped at 300 s, spread by
    ±10 % so that a burst of failures does not retry in lockstep), drawn with `rng`
    (`SHARED_RNG` unless given)."""

    max_retries: int = 3
    backoff: Backoff = DEFAULT_BACKOFF
    rng: random.Random = attrs.field(default=SHARED_RNG, eq=False, repr=False)

    @classmethod
    def from_options(
        cls, options: QueueOptions, *, jitter: float, rng: random.Random | None = None
    ) -> RetryPolicy:
        backoff = Backoff(
            initial=options.retry_delay / 1000.0,
            cap=options.max_retry_delay / 1000.0,
            jitter=jitter,
        )
        return cls(options.max_retries, backoff, rng if rng is not None else SHARED_RNG)

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retries

    def should_retry(self, attempt: int) -> bool:
        """`attempt` is the 1-based attempt that just failed."""
        return attempt < self.max_attempts

    def delay(self, attempt: int) -> float:
        """Seconds before the attempt after `attempt`."""
        return self.backoff.delay(attempt, self.rng)
