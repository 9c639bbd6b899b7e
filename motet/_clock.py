"""Wall-clock time derived from trio's clock, so MockClock drives everything.

wall = anchor_wall + (trio.current_time() - anchor_trio). Actors and backends read time only
through a `Clock`; nothing calls time.time() or datetime.now() in the runtime.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, tzinfo
from typing import Protocol

import trio


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds (UTC)."""
        ...

    def now_datetime(self, tz: tzinfo = UTC) -> datetime: ...

    def to_trio(self, epoch: float) -> float:
        """The trio time at which the wall clock reads `epoch`."""
        ...

    async def sleep_until(self, epoch: float) -> None: ...


class WallClock:
    """A wall clock anchored to trio's clock. Create it inside `trio.run`."""

    def __init__(self, anchor: datetime | float | None = None) -> None:
        if anchor is None:
            # The single place motet reads the real wall clock: to anchor it.
            anchor_epoch = time.time()
        elif isinstance(anchor, datetime):
            if anchor.tzinfo is None:
                raise ValueError(
                    f"WallClock anchor must be timezone-aware, got naive {anchor.isoformat()}; "
                    "pass e.g. datetime(..., tzinfo=timezone.utc)"
                )
            anchor_epoch = anchor.timestamp()
        else:
            anchor_epoch = float(anchor)
        self.anchor_epoch = anchor_epoch
        # The running trio clock's own reader: what trio.current_time() calls, without its
        # three layers of lookups (`now()` runs several times per message).
        self._trio_now = trio.lowlevel.current_clock().current_time
        self.anchor_trio = self._trio_now()

    def now(self) -> float:
        return self.anchor_epoch + (self._trio_now() - self.anchor_trio)

    def now_datetime(self, tz: tzinfo = UTC) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC).astimezone(tz)

    def to_trio(self, epoch: float) -> float:
        # Round up to the first trio time at which now() really reads >= epoch. Float
        # rounding could otherwise wake a sleeper one ulp early, forever seeing "not yet
        # due" with a deadline already past: a spin that MockClock cannot advance.
        when = self.anchor_trio + (epoch - self.anchor_epoch)
        while self.anchor_epoch + (when - self.anchor_trio) < epoch:
            when = math.nextafter(when, math.inf)
        return when

    async def sleep_until(self, epoch: float) -> None:
        await trio.sleep_until(self.to_trio(epoch))
