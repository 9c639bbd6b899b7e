"""The one backoff record every retrying loop shares."""

from __future__ import annotations

import math
import random

import pytest

from motet._backoff import Backoff


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=8.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert [Backoff(initial=1.0, factor=3.0).delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 9.0]


def test_a_zero_initial_or_a_non_positive_try_never_waits() -> None:
    assert Backoff(initial=0.0, cap=30.0).delay(5) == 0.0
    assert Backoff(initial=1.0).delay(0) == 0.0


def test_a_very_long_outage_waits_the_cap_without_overflowing() -> None:
    assert Backoff(initial=0.02, cap=1.0).delay(100_000) == 1.0
    assert Backoff(initial=1.0, factor=10.0, cap=5.0).delay(10_000) == 5.0


def test_jitter_comes_from_the_random_source_passed_in() -> None:
    backoff = Backoff(initial=10.0, cap=100.0, jitter=0.1)
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 5)]
    again = [backoff.delay(n, random.Random(7)) for n in range(1, 5)]
    assert first == again
    for n, delay in enumerate(first, start=1):
        base = min(100.0, 10.0 * 2 ** (n - 1))
        assert 0.9 * base <= delay <= 1.1 * base
    assert first != [10.0, 20.0, 40.0, 80.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"initial": -1.0},
            ValueError,
            "Backoff.initial must be a finite number of seconds >= 0, got -1",
        ),
        (
            {"initial": math.inf},
            ValueError,
            "Backoff.initial must be a finite number of seconds >= 0, got inf",
        ),
        ({"initial": "1"}, TypeError, "Backoff.initial must be a number of seconds, got '1'"),
        ({"initial": 1.0, "factor": 0.5}, ValueError, "Backoff.factor must be a number >= 1"),
        (
            {"initial": 1.0, "cap": -2},
            ValueError,
            "Backoff.cap must be a number of seconds >= 0, got -2",
        ),
        (
            {"initial": 1.0, "jitter": 1.5},
            ValueError,
            "Backoff.jitter must be a number from 0 to 1, got 1.5",
        ),
    ],
)
def test_wrong_values_are_refused_naming_the_field(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]
