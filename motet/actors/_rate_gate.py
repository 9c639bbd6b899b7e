"""The step actor's side of a rate limit: lease through the backend's token bucket, and
sleep until the next token instead of asking again.

The backend answers each `receive_limited` with how long until its bucket holds a token
again (`Leased.wait`); the gate sleeps that long (on trio's clock, so MockClock tests are
exact) before the next lease. Nothing is leased while it sleeps, so throttled messages stay
ready for any instance to take when tokens come. An actor without a rate limit has no gate
and never runs this code.
"""

from __future__ import annotations

import attrs
import trio

from .._envelope import Delivery, RateLimit, Subscription
from ..backends._protocol import QueueBackend


@attrs.frozen
class Throttling:
    """A rate-limited subscription as this instance sees it: its limit, whether its actor is
    waiting for a token with messages held back now, and how often and how long it did."""

    limit: RateLimit
    throttled: bool = False
    waits: int = 0  # waits for a token while messages were ready
    waited: float = 0.0  # s spent in those waits


class RateGate:
    def __init__(self, backend: QueueBackend, subscription: Subscription) -> None:
        assert subscription.options.rate_limit is not None
        self.limit = subscription.options.rate_limit
        self._backend = backend
        self._subscription = subscription
        self._resume_at: float | None = None  # trio time of the next token, when none is left
        self._held_back = False  # messages were ready when the bucket ran dry
        self._waiting = False
        self.waits = 0
        self.waited = 0.0

    def statistics(self) -> Throttling:
        return Throttling(self.limit, self._waiting and self._held_back, self.waits, self.waited)

    async def receive(self, max_count: int) -> list[Delivery]:
        """Deliveries leased under the limit; first waits out the last answer's `wait`."""
        while True:
            if self._resume_at is not None:
                await self._pause(self._resume_at)
            leased = await self._backend.receive_limited(self._subscription, max_count)
            if leased.wait > 0:
                self._resume_at = trio.current_time() + leased.wait
                self._held_back = leased.waiting
            if leased.deliveries:
                return leased.deliveries

    async def _pause(self, until: float) -> None:
        started = trio.current_time()
        counted = self._held_back
        if counted:
            self.waits += 1
        self._waiting = True
        try:
            await trio.sleep_until(until)
        finally:
            self._waiting = False
            self._resume_at = None
            if counted:
                self.waited += trio.current_time() - started
