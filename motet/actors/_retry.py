"""Retries as a policy object: how long to wait before attempt n+1, and when to give up."""

from __future__ import annotations

import random

import attrs

from .._envelope import QueueOptions


@attrs.frozen
class RetryPolicy:
    """`max_retries` retries after the first attempt; delay doubles from `retry_delay` ms,
    capped at `max_retry_delay` ms, multiplied by a factor drawn from [1 - jitter, 1 + jitter]
    so that a burst of failures does not retry in lockstep."""

    max_retries: int = 3
    retry_delay_ms: int = 1000
    max_retry_delay_ms: int = 300_000
    jitter: float = 0.1
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    @classmethod
    def from_options(
        cls, options: QueueOptions, *, jitter: float, rng: random.Random | None = None
    ) -> RetryPolicy:
        return cls(
            max_retries=options.max_retries,
            retry_delay_ms=options.retry_delay,
            max_retry_delay_ms=options.max_retry_delay,
            jitter=jitter,
            rng=rng if rng is not None else random.Random(),
        )

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retries

    def should_retry(self, attempt: int) -> bool:
        """`attempt` is the 1-based attempt that just failed."""
        return attempt < self.max_attempts

    def base_delay(self, attempt: int) -> float:
        """Seconds before the attempt after `attempt`, without jitter."""
        ms = min(self.retry_delay_ms * 2 ** (attempt - 1), self.max_retry_delay_ms)
        return ms / 1000.0

    def delay(self, attempt: int) -> float:
        base = self.base_delay(attempt)
        if not self.jitter:
            return base
        return max(0.0, base * self.rng.uniform(1 - self.jitter, 1 + self.jitter))
