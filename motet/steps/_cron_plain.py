"""Plain cron fields expanded without croniter, as croniter expands them.

croniter (with dateutil, about 1 MiB resident and the larger part of the cron import time) is
needed for the forms with calendar rules of their own (`L`, `W`, `#`) and gives the messages
that name what is wrong in a bad expression. The expressions most projects write are plain:
every field `*`, a number, a range `a-b` with a < b, a step `*/n` or `a-b/n`, or a list of
these, within the field's bounds, and a year field of `*`. `expand` returns croniter's own
`expanded` for those (checked against croniter by a property test) and None for anything
else, which then goes to croniter: names (`JAN`, `MON`), `?`, ranges written backwards or
with equal ends (croniter reads `1-1` as the whole field), a step larger than its range, a
value out of range, a year.

Like croniter, a field whose values cover its whole range is `*`, and day-of-week 7 is 0.
A day field (day-of-month, day-of-week) covering its whole range becomes `*` only when the
other day field's text contains a `*`: otherwise it stays a list, and a restricted
day-of-month and day-of-week combine with OR (`* * 1 * 0-6` is the 1st and every day).
"""

from __future__ import annotations

# (lowest, highest) per field, in croniter's expanded order: minute, hour, day-of-month,
# month, day-of-week (7 is Sunday, as 0), then second.
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (0, 59))
_DOM, _DOW = 2, 4
_WHOLE_WEEK = frozenset(range(7))

Expanded = list[list[int | str]]


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _part(text: str, low: int, high: int) -> range | None:
    """The values of one list element, or None when it is not plain."""
    span, slash, step_text = text.partition("/")
    step = 1
    if slash:
        parsed = _number(step_text)
        if parsed is None or parsed < 1:
            return None
        step = parsed
    if span == "*":
        first, last = low, high
    else:
        start, dash, end = span.partition("-")
        first_value = _number(start)
        last_value = _number(end) if dash else first_value
        if first_value is None or last_value is None:
            return None
        if dash and first_value >= last_value:
            return None
        if slash and not dash:  # `5/15`: croniter's reading is its own
            return None
        first, last = first_value, last_value
    if first < low or last > high or (slash and step > last - first):
        return None
    return range(first, last + 1, step)


def _field(text: str, index: int, other_day: str) -> list[int | str] | None:
    """One field's values; `other_day` is the text of the other day field (for the day
    fields' rule above)."""
    low, high = _BOUNDS[index]
    if text == "*":
        return ["*"]
    values: set[int] = set()
    for element in text.split(","):
        found = _part(element, low, high)
        if found is None:
            return None
        values.update(found)
    if index == _DOW:
        values = {0 if v == 7 else v for v in values}
        whole = values >= _WHOLE_WEEK
    else:
        whole = values >= set(range(low, high + 1))
    if whole and (index not in (_DOM, _DOW) or "*" in other_day):
        return ["*"]
    return sorted(values)


def expand(fields: list[str]) -> Expanded | None:
    """croniter's `expanded` for 5, 6 (seconds first) or 7 (seconds first, year last) plain
    fields, in croniter's order (minute, hour, day-of-month, month, day-of-week[, second[,
    year]]); None when a field is not plain."""
    if len(fields) == 5:
        ordered, year = fields, None
    elif len(fields) in (6, 7):
        ordered, year = [*fields[1:6], fields[0]], fields[6] if len(fields) == 7 else None
        if year is not None and year != "*":
            return None
    else:
        return None
    expanded: Expanded = []
    for index, text in enumerate(ordered):
        other_day = ordered[_DOW] if index == _DOM else ordered[_DOM]
        values = _field(text, index, other_day)
        if values is None:
            return None
        expanded.append(values)
    if year is not None:
        expanded.append(["*"])
    return expanded
