"""How a loop rides out a backend that cannot take its calls for a while.

A `BackendUnavailable` (a full disk, an I/O error, Redis away past its reconnect timeout) is
a condition of the backend, not a bug of the caller: the loop waits and tries again with
exponential backoff, says why in the log at once and then at most once a minute, and says
so again when a call works. Time is trio's, so MockClock drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from .._backoff import Backoff
from .._errors import BackendUnavailable

OUTAGE_FIRST_WAIT = 0.05  # s before a backend call that failed as unavailable is tried again
OUTAGE_MAX_WAIT = 5.0  # s: the backoff doubles up to this
OUTAGE_BACKOFF = Backoff(initial=OUTAGE_FIRST_WAIT, cap=OUTAGE_MAX_WAIT)
OUTAGE_LOG_EVERY = 60.0  # s between two log lines about the same outage


class Outage:
    """One loop's view of a backend that refuses its calls: how long to wait before the
    next try, and when to say so in the log (at the first failure, then at most once a
    minute, and once when a call works again). Time is trio's, so MockClock drives it."""

    def __init__(
        self, logger: Callable[[], Any], what: str, backoff: Backoff = OUTAGE_BACKOFF
    ) -> None:
        self._logger = logger
        self._what = what
        self._backoff = backoff
        self._since: float | None = None
        self._logged = float("-inf")
        self._failures = 0

    async def failed(self, exc: BackendUnavailable) -> None:
        now = trio.current_time()
        self._failures += 1
        if self._since is None:
            self._since = now
        if now - self._logged >= OUTAGE_LOG_EVERY:
            self._logged = now
            self._logger().error(
                f"backend unavailable: cannot {self._what}; retrying with backoff",
                error=str(exc),
                failures=self._failures,
                for_seconds=round(now - self._since, 3),
            )
        await trio.sleep(self._backoff.delay(self._failures))

    def ok(self) -> None:
        if self._since is None:
            return
        self._logger().info(
            f"backend available again: {self._what} works",
            failures=self._failures,
            after_seconds=round(trio.current_time() - self._since, 3),
        )
        self._since = None
        self._logged = float("-inf")
        self._failures = 0
