"""Cron expressions: parsing, validation and fire times in a trigger's timezone.

Forms: 5 fields `min hour dom mon dow`; 6 fields with seconds FIRST
(`sec min hour dom mon dow`, as Motia and iii); 7 fields with seconds first and year last
(`sec min hour dom mon dow year`, as `0 0 2 * * * *` in the seeds). Matching of wall-clock
times is croniter's; the mapping of wall-clock times to instants is ours (`_cron_time`), so
daylight-saving days follow one written policy instead of a croniter version's behaviour.

Fire times are whole UTC epoch seconds, returned as floats. Pure functions of the expression,
the timezone and an instant: the step loader validates expressions with `parse_cron` (so what
loads is what runs) and the clock actor asks the schedule for fire times.

Plain expressions (`_cron_plain`) are expanded and matched without croniter, which is imported
only for the others and for the message about a bad expression: a process whose schedules
are all plain does not load it.
"""

from __future__ import annotations

import copy
import math
import re
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

import attrs

from .._validators import load_timezone
from ._cron_match import CronMatcher
from ._cron_plain import Expanded, expand
from ._cron_time import ZoneMapper, fixed_offset

if TYPE_CHECKING:
    from croniter import CroniterError, croniter

FORMS = (
    "5 fields 'min hour dom mon dow' (e.g. '0 8 * * *'), "
    "6 fields 'sec min hour dom mon dow' (e.g. '30 0 8 * * *'), "
    "7 fields 'sec min hour dom mon dow year' (e.g. '0 0 2 * * * *'), "
    "or one of @hourly @daily @midnight @weekly @monthly @yearly @annually"
)
# croniter's own aliases, spelled out so the field count and the DST policy see 5 fields.
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_FIELD_NAMES = {
    5: ("minute", "hour", "day-of-month", "month", "day-of-week"),
    6: ("second", "minute", "hour", "day-of-month", "month", "day-of-week"),
    7: ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year"),
}
_FIELD_RANGES = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31 or L",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT",
    "year": "1970-2099",
}
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def _bad(expression: str, what: str) -> ValueError:
    return ValueError(f"invalid cron expression {expression!r}: {what}; expected {FORMS}")


def _croniter(expression: str, start: datetime) -> croniter:
    from croniter import croniter

    # Seconds come first in 6- and 7-field expressions (Motia / iii), unlike croniter's default.
    return croniter(expression, start, second_at_beginning=True)


def _load_zone(name: str, expression: str) -> tzinfo:
    try:
        return load_timezone(name)
    except ValueError as exc:
        raise ValueError(f"cron expression {expression!r}: {exc}") from None


def _croniter_reason(exc: CroniterError) -> str:
    # croniter prefixes its messages with the expression in brackets; ours already says it.
    return re.sub(r"^\[[^\]]*\]\s*", "", str(exc))


def _validate(expression: str) -> tuple[str, int, Expanded | None]:
    """Check `expression`; return (what croniter is given, number of fields, the expanded
    fields of a plain expression or None)."""
    if not isinstance(expression, str):
        raise _bad(repr(expression), f"expected a string, got {type(expression).__name__}")
    source = ALIASES.get(expression.strip().lower(), expression)
    fields = source.split()
    if len(fields) not in _FIELD_NAMES:
        raise _bad(expression, f"it has {len(fields)} field(s)")
    plain = expand(fields)
    if plain is not None:
        matcher = CronMatcher.build(plain, special=False)
        year_2000 = int((datetime(2000, 1, 1) - _EPOCH).total_seconds())
        if matcher is None or matcher.first_at_or_after(year_2000) is None:
            raise _bad(expression, "it never matches a date (e.g. 30 February)")
        return source, len(fields), plain
    from croniter import CroniterBadDateError, CroniterError

    names = _FIELD_NAMES[len(fields)]
    # Try each field alone (the others '*') so the message names the field at fault.
    for i, (name, value) in enumerate(zip(names, fields, strict=True)):
        probe = " ".join(value if j == i else "*" for j in range(len(fields)))
        try:
            _croniter(probe, datetime(2000, 1, 1))
        except CroniterError as exc:
            # ("is not valid" is matched by the step loader's tests: keep that wording.)
            problem = "out of range" if "out of range" in str(exc) else "not understood"
            raise _bad(
                expression,
                f"{name} field {value!r} is not valid, {problem} (accepted: {_FIELD_RANGES[name]}, "
                "'*', lists 'a,b', ranges 'a-b', steps '*/n')",
            ) from exc
    try:
        it = _croniter(source, datetime(2000, 1, 1))
    except CroniterError as exc:
        raise _bad(expression, _croniter_reason(exc)) from exc
    expanded = it.expanded
    start = datetime(1999, 12, 31, 23, 59, 59)
    if len(fields) == 7 and expanded[6] != ["*"]:
        start = datetime(min(int(y) for y in expanded[6]), 1, 1) - _SECOND
    try:
        _croniter(source, start).get_next(datetime)
    except CroniterBadDateError as exc:
        raise _bad(expression, "it never matches a date (e.g. 30 February)") from exc
    return source, len(fields), None


@attrs.frozen
class CronSchedule:
    """A validated cron expression in one IANA timezone (default UTC).

    Daylight saving (`_cron_time` has the details): a schedule that runs in every hour
    (hour field `*`) follows real time — it skips wall-clock times that do not exist and
    runs through a repeated hour twice, like any other hour. Any other schedule follows the
    wall clock: each matching local time fires once — a time that does not exist fires at
    the first instant after the jump, a time that occurs twice fires at its first occurrence.
    """

    expression: str
    timezone: str = "UTC"
    fields: int = attrs.field(init=False)
    every_hour: bool = attrs.field(init=False, repr=False)
    _zone: ZoneMapper = attrs.field(init=False, repr=False, eq=False)
    _template: croniter | None = attrs.field(init=False, repr=False, eq=False)
    # Plain expressions are matched by table (`_cron_match`), croniter does the rest; a zone
    # whose offset never changes (UTC, Etc/*) needs no daylight-saving mapping.
    _matcher: CronMatcher | None = attrs.field(init=False, repr=False, eq=False)
    _fixed: int | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        source, fields, plain = _validate(self.expression)
        zone = _load_zone(self.timezone, self.expression)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "_zone", ZoneMapper(zone))
        if plain is not None:
            template, expanded = None, plain
            matcher = CronMatcher.build(plain, special=False)
        else:
            template = _croniter(source, _EPOCH)
            expanded = template.expanded
            special = bool(template.nth_weekday_of_month or template.nearest_weekday)
            matcher = CronMatcher.build(expanded, special)
        # The expanded order is croniter's: min, hour, dom, mon, dow[, sec[, year]].
        every_hour = expanded[1] == ["*"] or len(expanded[1]) == 24
        object.__setattr__(self, "every_hour", every_hour)
        object.__setattr__(self, "_template", template)
        object.__setattr__(self, "_matcher", matcher)
        object.__setattr__(self, "_fixed", fixed_offset(zone))

    def next_after(self, epoch: float) -> float | None:
        """The first fire time strictly after `epoch` (UTC epoch seconds), or None if the
        expression never matches again (a year field in the past)."""
        x = math.floor(epoch) + 1  # fire times are whole seconds
        if self._fixed is not None:
            wall = self._first_match_at_or_after(x + self._fixed)
            return None if wall is None else float(wall - self._fixed)
        if self.every_hour:
            found = self._zone.next_real(x, self._first_match_at_or_after)
        else:
            found = self._zone.next_wall(x, self._first_match_at_or_after)
        return None if found is None else float(found)

    def previous_at_or_before(self, epoch: float) -> float | None:
        """The latest fire time at or before `epoch`, or None if there is none."""
        x = math.floor(epoch)
        if self._fixed is not None:
            wall = self._last_match_at_or_before(x + self._fixed)
            return None if wall is None else float(wall - self._fixed)
        if self.every_hour:
            found = self._zone.previous_real(x, self._last_match_at_or_before)
        else:
            found = self._zone.previous_wall(x, self._last_match_at_or_before)
        return None if found is None else float(found)

    def _iterator(self, wall: int) -> croniter:
        # A copy of the parsed template: parsing is most of croniter's cost, and a fresh
        # iterator per call keeps the schedule free of shared mutable state.
        assert self._template is not None  # only expressions without a matcher get here
        it = copy.copy(self._template)
        it.set_current(_EPOCH + timedelta(seconds=wall), force=True)
        return it

    def _first_match_at_or_after(self, wall: int) -> int | None:
        """The first matching wall-clock time >= `wall` (wall seconds, naive as if UTC)."""
        if self._matcher is not None:
            return self._matcher.first_at_or_after(wall)
        from croniter import CroniterBadDateError

        try:
            found = self._iterator(wall - 1).get_next(datetime)
        except CroniterBadDateError:
            return None
        return int((found - _EPOCH).total_seconds())

    def _last_match_at_or_before(self, wall: int) -> int | None:
        if self._matcher is not None:
            return self._matcher.last_at_or_before(wall)
        from croniter import CroniterBadDateError

        try:
            found = self._iterator(wall + 1).get_prev(datetime)
        except CroniterBadDateError:
            return None
        return int((found - _EPOCH).total_seconds())


def parse_cron(expression: str, timezone: str | None = None) -> CronSchedule:
    """Validate a cron expression and its timezone (None means UTC).

    Raises ValueError naming what is wrong, the expression and the accepted forms.
    """
    if not isinstance(expression, str):
        raise _bad(repr(expression), f"expected a string, got {type(expression).__name__}")
    return CronSchedule(" ".join(expression.split()), timezone if timezone is not None else "UTC")
