"""Restart intensity (OTP's MaxR within MaxT) and the restart backoff schedule."""

from __future__ import annotations

from collections import deque


class RestartWindow:
    """Counts restarts inside a sliding window of `period` seconds of trio time.

    Invariant: `_times` holds only restarts later than `now - period` for the last
    `now` recorded, oldest first.
    """

    __slots__ = ("_period", "_times")

    def __init__(self, period: float) -> None:
        self._period = period
        self._times: deque[float] = deque()

    def record(self, now: float) -> int:
        """Record a restart at `now`; return how many fall inside the window."""
        self._times.append(now)
        horizon = now - self._period
        while self._times[0] <= horizon:
            self._times.popleft()
        return len(self._times)


def backoff_delay(nth: int, *, initial: float, cap: float) -> float:
    """Delay before the `nth` (1-based) restart of the current window: doubling, capped."""
    if initial <= 0 or nth <= 0:
        return 0.0
    # The exponent is clamped so a large intensity cannot overflow a float.
    return min(cap, initial * 2.0 ** min(nth - 1, 64))
