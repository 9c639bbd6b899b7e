"""WallClock: wall time derived from trio's clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from motet import WallClock


async def test_now_follows_virtual_time(autojump_clock: Any) -> None:
    clock = WallClock(datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    await trio.sleep(3600)
    assert clock.now_datetime() == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


async def test_sleep_until_wakes_when_now_reads_the_target(autojump_clock: Any) -> None:
    clock = WallClock(1_767_225_600.123)
    target = clock.now() + 0.7
    await clock.sleep_until(target)
    assert clock.now() >= target


async def test_to_trio_never_wakes_a_sleeper_early_regression_spin(autojump_clock: Any) -> None:
    # A deadline one ulp early made the memory backend see "not due yet" with its deadline
    # already past: it spun forever under MockClock (the retries test hung at random).
    rng = random.Random(7)
    for _ in range(2000):
        clock = WallClock(rng.uniform(1.6e9, 1.9e9))
        epoch = clock.now() + rng.uniform(0, 1e5)
        when = clock.to_trio(epoch)
        assert clock.anchor_epoch + (when - clock.anchor_trio) >= epoch
        assert when - (clock.anchor_trio + (epoch - clock.anchor_epoch)) < 1e-6


def test_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        trio.run(lambda: _make(datetime(2026, 1, 1)))


async def _make(anchor: datetime) -> WallClock:
    return WallClock(anchor)


async def test_real_clock_is_anchored_now() -> None:
    before = datetime.now(UTC)
    clock = WallClock()
    assert abs(clock.now_datetime() - before) < timedelta(seconds=5)
