"""The table matcher (`_cron_match`) against croniter, on random plain expressions: the fast
path must fire exactly when croniter says, before and after any instant."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import CroniterBadDateError
from hypothesis import given, settings
from hypothesis import strategies as st

from motet.steps._cron import _EPOCH, _croniter, parse_cron
from motet.steps._cron_match import CronMatcher


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    value = st.integers(lo, hi)
    single = value.map(str)
    span = st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.tuples(st.sampled_from(["*", f"{lo}-{hi}"]), st.integers(1, max(1, hi - lo))).map(
        lambda p: f"{p[0]}/{p[1]}"
    )
    part = st.one_of(single, span, step)
    return st.one_of(st.just("*"), st.lists(part, min_size=1, max_size=3).map(",".join))


_five = st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 7)).map(
    " ".join
)
_six = st.tuples(_field(0, 59), _five).map(" ".join)
_instants = st.integers(
    int(datetime(2020, 1, 1).timestamp()), int(datetime(2040, 12, 31).timestamp())
)


def _croniter_next(source: str, wall: int) -> int | None:
    try:
        found = _croniter(source, _EPOCH + timedelta(seconds=wall - 1)).get_next(datetime)
    except CroniterBadDateError:
        return None
    return int((found - _EPOCH).total_seconds())


def _croniter_prev(source: str, wall: int) -> int | None:
    try:
        found = _croniter(source, _EPOCH + timedelta(seconds=wall + 1)).get_prev(datetime)
    except CroniterBadDateError:
        return None
    return int((found - _EPOCH).total_seconds())


def _matcher(source: str) -> CronMatcher:
    it = _croniter(source, _EPOCH)
    matcher = CronMatcher.build(it.expanded, False)
    assert matcher is not None
    return matcher


@settings(max_examples=400, deadline=None)
@given(expression=st.one_of(_five, _six), wall=_instants)
def test_table_matches_croniter(expression: str, wall: int) -> None:
    matcher = _matcher(expression)
    assert matcher.first_at_or_after(wall) == _croniter_next(expression, wall)
    assert matcher.last_at_or_before(wall) == _croniter_prev(expression, wall)


def test_special_forms_stay_with_croniter() -> None:
    for expression in ("0 0 L * *", "0 0 * * 1#2", "0 0 15W * *"):
        schedule = parse_cron(expression)
        assert schedule._matcher is None, expression
    assert parse_cron("*/5 * * * *")._matcher is not None


def test_leap_day_and_year_field() -> None:
    leap = _matcher("0 0 29 2 *")
    start = int((datetime(2097, 3, 1) - _EPOCH).total_seconds())
    assert leap.first_at_or_after(start) == _croniter_next("0 0 29 2 *", start)  # 2104
    years = _matcher("0 0 0 1 1 * 2030-2032/2")
    assert years.first_at_or_after(start) is None
    # (croniter gives up 50 years back; the table searches the years the field names)
    assert years.last_at_or_before(start) == int((datetime(2032, 1, 1) - _EPOCH).total_seconds())


_every_day = st.tuples(_field(0, 59), _field(0, 23)).map(lambda p: f"{p[0]} {p[1]} * * *")
_day_end = st.tuples(st.integers(18_262, 25_567), st.integers(0, 3_600)).map(
    lambda p: (p[0] + 1) * 86_400 - p[1]  # the last hour of a day from 2020 to 2039
)


@settings(max_examples=300, deadline=None)
@given(expression=st.one_of(_every_day, _every_day.map(lambda e: f"0-59/7 {e}")), wall=_day_end)
def test_schedules_that_match_every_day_take_the_shortcut_as_croniter_would(
    expression: str, wall: int
) -> None:
    # Day, month and weekday all `*`: the next time is later today or tomorrow's first,
    # found without walking dates; near the end of a day it must roll over as croniter does.
    matcher = _matcher(expression)
    assert matcher.first_at_or_after(wall) == _croniter_next(expression, wall)


def test_the_every_day_shortcut_ends_where_the_search_does() -> None:
    matcher = _matcher("0 0 * * *")
    last_day = (datetime(9998, 12, 31) - datetime(1970, 1, 1)).days * 86_400
    assert matcher.first_at_or_after(last_day - 86_400 + 1) == last_day
    assert matcher.first_at_or_after(last_day + 1) is None  # 9999 is past the search
