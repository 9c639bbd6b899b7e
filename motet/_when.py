"""Time arguments as users write them, read once: delays, instants and durations.

    delay=30, delay=timedelta(minutes=5), delay="5m"     a duration (seconds when a number)
    at=datetime(2026, 1, 1, 9, tzinfo=UTC)                an aware instant; naive is refused
    expires=60, expires=timedelta(hours=1), expires=dt   a duration after the message is due,
                                                         or an aware instant

Durations as text are a number and a unit, several summed: `"250ms"`, `"30s"`, `"5m"`,
`"1h30m"`, `"2d"` (a bare number is seconds). Every error says what was given and what is
expected, naming the argument (`what`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def seconds_of(value: Any, what: str, *, allow_zero: bool = True) -> float:
    """A duration in seconds: a number (seconds), a `timedelta` or text like "5m"."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse(value.strip(), what)
    else:
        raise TypeError(
            f"{what} must be a number of seconds, a timedelta or a duration like '30s', "
            f"got {value!r} ({type(value).__name__})"
        )
    if (
        math.isnan(seconds)
        or math.isinf(seconds)
        or seconds < 0
        or (seconds == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what} must be a finite duration {bound}, got {value!r}")
    return seconds


def _parse(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    total, end = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != end:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        end = match.end()
    if not text or end != len(text):
        raise ValueError(
            f"{what} {text!r} is not a duration: expected a number and a unit (ms, s, m, h, "
            "d), several summed, like '30s', '5m' or '1h30m'"
        )
    return total


def instant_of(value: Any, what: str) -> float:
    """Epoch seconds of an aware `datetime` (or ISO 8601 text with an offset)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{what} {value!r} is not an ISO 8601 time like '2026-01-05T09:00:00Z'"
            ) from None
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {value!r} ({type(value).__name__})")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} must be an aware datetime (with a timezone, e.g. tzinfo=UTC), got the "
            f"naive {value.isoformat()}: motet will not guess which timezone it is in"
        )
    return value.timestamp()


def due_time(now: float, delay: Any, at: Any) -> float | None:
    """When a message with this `delay` or `at` is due (epoch s), or None for at once."""
    if delay is not None and at is not None:
        raise TypeError("emit takes delay= or at=, not both")
    if at is not None:
        return instant_of(at, "at")
    if delay is not None:
        seconds = seconds_of(delay, "delay")
        return now + seconds if seconds > 0 else None
    return None


def expiry_time(due: float, expires: Any) -> float | None:
    """When a message due at `due` expires: `expires` after it, or at an instant."""
    if expires is None:
        return None
    if isinstance(expires, datetime | str) and not _is_duration_text(expires):
        return instant_of(expires, "expires")
    return due + seconds_of(expires, "expires", allow_zero=False)


def _is_duration_text(value: Any) -> bool:
    return isinstance(value, str) and bool(_PART.match(value.strip()) or _is_number(value))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
