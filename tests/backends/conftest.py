"""Fixtures shared by every backend's run of the contract suite (tests/backends/contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from trio.testing import MockClock

from motet._clock import WallClock

# A fixed wall-clock anchor, so failed_at / created_at values are reproducible.
ANCHOR = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def clock(mock_clock: MockClock) -> WallClock:
    """The wall clock every backend under test reads; it moves only with `mock_clock.jump`.

    (A test must also take `mock_clock` itself: pytest-trio runs the test under the clock
    found among the test function's own arguments.)"""
    return WallClock(ANCHOR)
