"""Fast cron matching for plain expressions: next and previous matching wall time by table.

croniter parses an expression once but pays tens of microseconds per `get_next` (datetime
and relativedelta arithmetic per field). The clock actor asks once per tick, so a month of
an every-minute schedule under MockClock spent most of its real time there. For the plain
forms — every field `*` or a list of numbers (which is what `*/n`, ranges, lists and names
expand to) — a match is a lookup in sorted tables: walk the days (skipping whole months and
years that cannot match), then take the first hour, minute and second at or after the
start. `CronMatcher.build` returns None for the forms with calendar rules of their own
(`L`, `W`, `#`), which stay with croniter.

Semantics are croniter's (checked against it by a property test): day-of-month and
day-of-week are combined with OR when both are restricted, AND (one of them `*`) otherwise;
day-of-week 0 is Sunday. Wall times are seconds since 1970-01-01T00:00 read as UTC.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import attrs

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400
_ONE_DAY = timedelta(days=1)
# Without a year field a valid expression matches within 8 years (29 February); searching
# further than this is a search for a match that does not exist.
_SPAN_YEARS = 50
_FIRST_YEAR, _LAST_YEAR = 1970, 2099
# Days from 1970 before the last day of 9998, the last year the full search looks at: from
# any of them the next day is still searched, so its shortcut answers as the search does.
_EVERY_DAY_ORDINALS = date(9998, 12, 31).toordinal() - _EPOCH_ORDINAL


def _table(field: Sequence[Any], full: range) -> tuple[int, ...] | None:
    """A field's sorted values, or None for `*` (or a list that covers the whole range)."""
    if list(field) == ["*"]:
        return None
    values = tuple(sorted({int(v) for v in field}))
    return None if values == tuple(full) else values


def _plain(field: Sequence[Any]) -> bool:
    return list(field) == ["*"] or all(isinstance(v, int) for v in field)


@attrs.frozen
class CronMatcher:
    """Sorted tables of one plain expression (None = any value)."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int] | None  # None: the field is `*`
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday; None: the field is `*`
    years: tuple[int, ...] | None

    @classmethod
    def build(cls, expanded: Sequence[Sequence[Any]], special: bool) -> CronMatcher | None:
        """From croniter's `expanded` fields (minute, hour, dom, month, dow[, second[,
        year]]); None when `special` (croniter holds `#` or `W` rules) or a field is not
        plain."""
        if special or not all(_plain(f) for f in expanded):
            return None
        minute, hour, dom, month, dow = expanded[:5]
        second = expanded[5] if len(expanded) > 5 else [0]
        year = expanded[6] if len(expanded) > 6 else ["*"]
        # Day fields keep a full list as a list: croniter combines a restricted-looking
        # field (`1-31`, `0-6`, even `1-1`, which it expands to the whole month) with OR.
        days = None if list(dom) == ["*"] else frozenset(int(v) for v in dom)
        weekdays = None if list(dow) == ["*"] else frozenset(0 if v == 7 else int(v) for v in dow)
        months = _table(month, range(1, 13))
        return cls(
            seconds=_table(second, range(60)) or tuple(range(60)),
            minutes=_table(minute, range(60)) or tuple(range(60)),
            hours=_table(hour, range(24)) or tuple(range(24)),
            days=days,
            months=None if months is None else frozenset(months),
            weekdays=weekdays,
            years=_table(year, range(_FIRST_YEAR, _LAST_YEAR + 1)),
        )

    # -- days ------------------------------------------------------------------------

    def _day_matches(self, day: date) -> bool:
        days, weekdays = self.days, self.weekdays
        if days is None and weekdays is None:
            return True
        dom_ok = days is None or day.day in days
        dow_ok = weekdays is None or day.isoweekday() % 7 in weekdays
        if days is not None and weekdays is not None:
            return dom_ok or dow_ok  # both restricted: either one (cron's rule)
        return dom_ok and dow_ok

    def _month_matches(self, day: date) -> bool:
        years, months = self.years, self.months
        return (years is None or day.year in years) and (months is None or day.month in months)

    # -- times of day ------------------------------------------------------------------

    def _first_time_at_or_after(self, tod: int) -> int | None:
        h, rest = divmod(tod, 3600)
        m, s = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        for hh in hours[bisect_left(hours, h) :]:
            m0 = m if hh == h else 0
            for mm in minutes[bisect_left(minutes, m0) :]:
                s0 = s if hh == h and mm == m else 0
                i = bisect_left(seconds, s0)
                if i < len(seconds):
                    return hh * 3600 + mm * 60 + seconds[i]
        return None

    def _last_time_at_or_before(self, tod: int) -> int | None:
        h, rest = divmod(tod, 3600)
        m, s = divmod(rest, 60)
        hours, minutes, seconds = self.hours, self.minutes, self.seconds
        for hh in reversed(hours[: bisect_right(hours, h)]):
            m0 = m if hh == h else 59
            for mm in reversed(minutes[: bisect_right(minutes, m0)]):
                s0 = s if hh == h and mm == m else 59
                i = bisect_right(seconds, s0)
                if i:
                    return hh * 3600 + mm * 60 + seconds[i - 1]
        return None

    # -- searches ------------------------------------------------------------------------

    def first_at_or_after(self, wall: int) -> int | None:
        """The first matching wall time >= `wall`, or None (none before the search ends)."""
        ordinal, tod = divmod(wall, _DAY)
        if (
            self.days is None
            and self.weekdays is None
            and self.months is None
            and self.years is None
            and 0 <= ordinal < _EVERY_DAY_ORDINALS
        ):
            # Every day matches (an every-minute or hourly schedule): a time later today,
            # else tomorrow's first, with no walk over dates (once a tick, per tick).
            found = self._first_time_at_or_after(tod)
            if found is None:
                ordinal, found = ordinal + 1, self.hours[0] * 3600 + self.minutes[0] * 60
                found += self.seconds[0]
            return ordinal * _DAY + found
        day: date = date.fromordinal(_EPOCH_ORDINAL + ordinal)
        years = self.years
        last_year = years[-1] if years else min(day.year + _SPAN_YEARS, 9998)
        while day.year <= last_year:
            if years is not None and day.year not in years:
                day, tod = date(day.year + 1, 1, 1), 0
                continue
            if not self._month_matches(day):
                # Skip to the first day of the next month: no day of this one can match.
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                tod = 0
                continue
            if self._day_matches(day):
                found = self._first_time_at_or_after(tod)
                if found is not None:
                    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY + found
            day += _ONE_DAY
            tod = 0
        return None

    def last_at_or_before(self, wall: int) -> int | None:
        """The latest matching wall time <= `wall`, or None."""
        ordinal, tod = divmod(wall, _DAY)
        if ordinal < 0:
            return None
        day: date = date.fromordinal(_EPOCH_ORDINAL + ordinal)
        years = self.years
        first_year = years[0] if years else max(day.year - _SPAN_YEARS, _FIRST_YEAR)
        while day.year >= first_year:
            if years is not None and day.year not in years:
                day, tod = date(day.year - 1, 12, 31), _DAY - 1
                continue
            if not self._month_matches(day):
                # Back to the last day of the previous month.
                day = date(day.year, day.month, 1) - _ONE_DAY
                tod = _DAY - 1
                continue
            if self._day_matches(day):
                found = self._last_time_at_or_before(tod)
                if found is not None:
                    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY + found
            if day.toordinal() == _EPOCH_ORDINAL:
                return None
            day -= _ONE_DAY
            tod = _DAY - 1
        return None
