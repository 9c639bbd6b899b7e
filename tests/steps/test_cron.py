"""Cron expressions: forms, timezones, daylight-saving days and the errors users see."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from croniter import croniter

from motet.steps._cron import CronSchedule, parse_cron


def at(text: str) -> float:
    """Epoch seconds of an ISO 8601 time with an explicit offset."""
    when = datetime.fromisoformat(text)
    assert when.tzinfo is not None
    return when.timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def fires(schedule: CronSchedule, start: str, end: str) -> list[str]:
    """Every fire time in (start, end], as UTC ISO strings, by repeated next_after."""
    out: list[str] = []
    when = at(start)
    stop = at(end)
    while True:
        found = schedule.next_after(when)
        if found is None or found > stop:
            return out
        assert found > when
        out.append(iso(found))
        when = found


# -- the three forms -------------------------------------------------------------------


def test_five_fields_fire_at_the_minute_in_utc() -> None:
    s = parse_cron("0 8 * * *")
    assert (s.fields, s.timezone) == (5, "UTC")
    assert fires(s, "2026-01-01T00:00:00+00:00", "2026-01-03T23:00:00+00:00") == [
        "2026-01-01T08:00:00Z",
        "2026-01-02T08:00:00Z",
        "2026-01-03T08:00:00Z",
    ]


def test_weekly_and_monthly_patterns_from_the_seeds() -> None:
    monday = parse_cron("0 9 * * 1")
    assert fires(monday, "2026-01-01T00:00:00+00:00", "2026-01-20T00:00:00+00:00") == [
        "2026-01-05T09:00:00Z",
        "2026-01-12T09:00:00Z",
        "2026-01-19T09:00:00Z",
    ]
    monthly = parse_cron("0 10 1 * *")
    assert fires(monthly, "2026-01-15T00:00:00+00:00", "2026-03-15T00:00:00+00:00") == [
        "2026-02-01T10:00:00Z",
        "2026-03-01T10:00:00Z",
    ]


def test_six_fields_put_seconds_first() -> None:
    s = parse_cron("30 0 8 * * *")
    assert s.fields == 6
    assert fires(s, "2026-01-01T00:00:00+00:00", "2026-01-02T12:00:00+00:00") == [
        "2026-01-01T08:00:30Z",
        "2026-01-02T08:00:30Z",
    ]


def test_six_fields_every_second() -> None:
    s = parse_cron("* * * * * *")
    assert fires(s, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:03+00:00") == [
        "2026-01-01T00:00:01Z",
        "2026-01-01T00:00:02Z",
        "2026-01-01T00:00:03Z",
    ]


def test_seven_fields_of_the_seeds_mean_two_am_daily() -> None:
    s = parse_cron("0 0 2 * * * *")
    assert s.fields == 7
    assert fires(s, "2026-01-01T00:00:00+00:00", "2026-01-03T00:00:00+00:00") == [
        "2026-01-01T02:00:00Z",
        "2026-01-02T02:00:00Z",
    ]


def test_seven_fields_year_limits_the_schedule() -> None:
    s = parse_cron("0 0 0 1 1 * 2030")
    assert iso(s.next_after(at("2026-06-01T00:00:00+00:00")) or 0) == "2030-01-01T00:00:00Z"
    assert s.next_after(at("2030-01-01T00:00:00+00:00")) is None
    assert s.previous_at_or_before(at("2029-12-31T23:59:59+00:00")) is None
    assert s.previous_at_or_before(at("2031-01-01T00:00:00+00:00")) == at("2030-01-01T00:00:00Z")


def test_at_aliases_are_five_field_schedules() -> None:
    daily = parse_cron("@daily", "Europe/Paris")
    assert (daily.expression, daily.fields) == ("@daily", 5)
    assert fires(daily, "2026-01-01T12:00:00+00:00", "2026-01-03T00:00:00+00:00") == [
        "2026-01-01T23:00:00Z",
        "2026-01-02T23:00:00Z",
    ]
    assert parse_cron("@HOURLY").next_after(at("2026-01-01T00:10:00+00:00")) == at(
        "2026-01-01T01:00:00+00:00"
    )


def test_next_after_is_strict_and_ignores_fractions() -> None:
    s = parse_cron("0 8 * * *")
    eight = at("2026-01-01T08:00:00+00:00")
    assert s.next_after(eight) == eight + 86400
    assert s.next_after(eight - 0.25) == eight
    assert s.previous_at_or_before(eight) == eight
    assert s.previous_at_or_before(eight - 0.25) == eight - 86400
    assert s.previous_at_or_before(eight + 0.75) == eight


# -- timezones -------------------------------------------------------------------------


def test_trigger_timezone_paris_winter_and_summer() -> None:
    s = parse_cron("0 8 * * *", "Europe/Paris")
    assert fires(s, "2026-01-10T00:00:00+00:00", "2026-01-11T00:00:00+00:00") == [
        "2026-01-10T07:00:00Z"
    ]
    assert fires(s, "2026-07-10T00:00:00+00:00", "2026-07-11T00:00:00+00:00") == [
        "2026-07-10T06:00:00Z"
    ]


@pytest.mark.parametrize("expression", ["*/7 * * * *", "0 8 * * 1-5", "30 2 L * *", "0 0 29 2 *"])
def test_utc_fires_as_the_zone_database_utc(expression: str) -> None:
    # "UTC" is datetime's own UTC (no zone database); "Etc/UTC" is a ZoneInfo: same times.
    plain, zoned = parse_cron(expression), parse_cron(expression, "Etc/UTC")
    for epoch in range(0, 8 * 366 * 86400, 86400 * 13 + 3617):
        assert plain.next_after(epoch) == zoned.next_after(epoch)
        assert plain.previous_at_or_before(epoch) == zoned.previous_at_or_before(epoch)


def test_timezone_none_means_utc_and_is_part_of_equality() -> None:
    assert (
        parse_cron("0 8 * * *", None) == parse_cron("  0   8 * * * ") == CronSchedule("0 8 * * *")
    )
    assert parse_cron("0 8 * * *", "Europe/Paris") != parse_cron("0 8 * * *")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        parse_cron("0 8 * * *").expression = "1 8 * * *"  # type: ignore[misc]


# -- daylight-saving days: each local time fires once -------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "start", "end", "expected"),
    [
        # Berlin spring forward 2026-03-29 02:00 -> 03:00: 08:00 exists, once, at +02:00.
        (
            "Europe/Berlin",
            "0 8 * * *",
            "2026-03-28T00:00:00+01:00",
            "2026-03-30T12:00:00+02:00",
            ["2026-03-28T07:00:00Z", "2026-03-29T06:00:00Z", "2026-03-30T06:00:00Z"],
        ),
        # 02:30 does not exist on that day: it fires once, at 03:00 +02:00 (the jump).
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-03-28T00:00:00+01:00",
            "2026-03-30T12:00:00+02:00",
            ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        # Berlin fall back 2026-10-25 03:00 -> 02:00: 02:30 happens twice, fires once (first).
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-24T00:00:00+02:00",
            "2026-10-26T12:00:00+01:00",
            ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        (
            "Europe/Berlin",
            "0 8 * * *",
            "2026-10-24T00:00:00+02:00",
            "2026-10-26T12:00:00+01:00",
            ["2026-10-24T06:00:00Z", "2026-10-25T07:00:00Z", "2026-10-26T07:00:00Z"],
        ),
        # New York spring forward 2026-03-08 02:00 -> 03:00.
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T00:00:00-05:00",
            "2026-03-09T12:00:00-04:00",
            ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        # New York fall back 2026-11-01 02:00 -> 01:00: 01:30 happens twice, fires once.
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T00:00:00-04:00",
            "2026-11-02T12:00:00-05:00",
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        (
            "America/New_York",
            "0 8 * * *",
            "2026-10-31T00:00:00-04:00",
            "2026-11-02T12:00:00-05:00",
            ["2026-10-31T12:00:00Z", "2026-11-01T13:00:00Z", "2026-11-02T13:00:00Z"],
        ),
        # Every quarter hour of 02:xx only: the missing hour collapses into one fire at 03:00.
        (
            "Europe/Berlin",
            "*/15 2 * * *",
            "2026-03-29T00:00:00+01:00",
            "2026-03-29T12:00:00+02:00",
            ["2026-03-29T01:00:00Z"],
        ),
    ],
)
def test_daylight_saving_days_fire_once(
    zone: str, expression: str, start: str, end: str, expected: list[str]
) -> None:
    assert fires(parse_cron(expression, zone), start, end) == expected


def test_every_hour_schedules_follow_real_time_across_dst() -> None:
    """`*/30 * * * *` keeps its half-hour rhythm: the skipped hour has no ticks and the
    repeated hour ticks again (it is a real hour of work)."""
    s = parse_cron("*/30 * * * *", "Europe/Berlin")
    assert fires(s, "2026-03-29T01:00:00+01:00", "2026-03-29T03:30:00+02:00") == [
        "2026-03-29T00:30:00Z",  # 01:30 +01
        "2026-03-29T01:00:00Z",  # 03:00 +02 (02:xx does not exist)
        "2026-03-29T01:30:00Z",  # 03:30 +02
    ]
    assert fires(s, "2026-10-25T01:45:00+02:00", "2026-10-25T03:00:00+01:00") == [
        "2026-10-25T00:00:00Z",  # 02:00 +02
        "2026-10-25T00:30:00Z",  # 02:30 +02
        "2026-10-25T01:00:00Z",  # 02:00 +01
        "2026-10-25T01:30:00Z",  # 02:30 +01
        "2026-10-25T02:00:00Z",  # 03:00 +01
    ]


# -- against a brute-force oracle, minute by minute across transitions ---------------------

TRANSITIONS = [
    ("Europe/Berlin", "2026-03-28T12:00:00+00:00"),
    ("Europe/Berlin", "2026-10-24T12:00:00+00:00"),
    ("America/New_York", "2026-03-07T12:00:00+00:00"),
    ("America/New_York", "2026-10-31T12:00:00+00:00"),
    ("Australia/Lord_Howe", "2026-04-04T00:00:00+00:00"),  # back 30 minutes
    ("Australia/Lord_Howe", "2026-10-03T00:00:00+00:00"),  # forward 30 minutes
    ("Asia/Kolkata", "2026-03-07T12:00:00+00:00"),  # no DST at all
]
EXPRESSIONS = ["*/7 * * * *", "15,45 * * * *", "30 2 * * *", "*/10 1-3 * * *", "0 0,2 * * *"]


def _matcher(expression: str) -> Callable[[datetime], bool]:
    """A wall-time matcher for the minute/hour-only expressions below (croniter.match is
    correct but too slow to call for every minute of the windows)."""
    expanded = croniter(expression).expanded
    assert all(field == ["*"] for field in expanded[2:]), expression
    minutes = set(range(60)) if expanded[0] == ["*"] else set(expanded[0])
    hours = set(range(24)) if expanded[1] == ["*"] else set(expanded[1])

    def match(wall: datetime) -> bool:
        return wall.minute in minutes and wall.hour in hours

    return match


def _oracle(expression: str, zone: str, start: float, minutes: int) -> list[float]:
    """Fire times in (start, start + minutes] straight from the definition, minute by
    minute: every-hour schedules fire at each instant whose wall time matches; the others
    fire, for each matching wall time w, at the first instant whose wall time is >= w."""
    tz = ZoneInfo(zone)
    instants = [start + 60 * i for i in range(1, minutes + 1)]
    walls = [datetime.fromtimestamp(u, tz).replace(tzinfo=None) for u in instants]
    match = _matcher(expression)
    if parse_cron(expression).every_hour:
        return [u for u, w in zip(instants, walls, strict=True) if match(w)]
    # The windows start well away from a transition, so wall times before walls[0] had
    # their first occurrence before the window.
    out = set()
    w, i = walls[0], 0
    while w <= walls[-1]:
        while walls[i] < w:  # the first instant reaching w only moves forward as w grows
            i += 1
        if match(w):
            out.add(instants[i])
        w += timedelta(minutes=1)
    return sorted(out)


@pytest.mark.parametrize(("zone", "start"), TRANSITIONS)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_matches_brute_force_oracle(zone: str, start: str, expression: str) -> None:
    begin = at(start)
    minutes = 30 * 60
    expected = _oracle(expression, zone, begin, minutes)
    s = parse_cron(expression, zone)
    got = []
    when = begin
    while (nxt := s.next_after(when)) is not None and nxt <= begin + 60 * minutes:
        got.append(nxt)
        when = nxt
    assert [iso(u) for u in got] == [iso(u) for u in expected]
    # previous_at_or_before walks the same instants backwards.
    for earlier, later in itertools.pairwise(got):
        assert s.previous_at_or_before(later) == later
        assert s.previous_at_or_before(later - 1) == earlier
    # From arbitrary instants too, including ones inside a repeated or skipped hour.
    for t in range(int(begin) + 1, int(begin) + 60 * minutes, 397):
        i = bisect.bisect_right(expected, t)
        if i < len(expected):
            assert iso(s.next_after(t) or 0) == iso(expected[i]), iso(t)
        if i > 0:
            assert iso(s.previous_at_or_before(t) or 0) == iso(expected[i - 1]), iso(t)


# -- errors users will see ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("* * * *", "it has 4 field(s)"),
        ("0 0 0 * * * * *", "it has 8 field(s)"),
        ("61 * * * *", "minute field '61' is not valid, out of range (accepted: 0-59"),
        ("0 24 * * *", "hour field '24' is not valid, out of range"),
        ("0 60 8 * * *", "minute field '60' is not valid, out of range"),
        ("0 0 2 * * * 1969", "year field '1969' is not valid, out of range (accepted: 1970-2099"),
        ("*/0 * * * *", "minute field '*/0' is not valid, not understood"),
        ("every day at 8", "it has 4 field(s)"),
        ("garbage", "it has 1 field(s)"),
        ("0 8 * * funday", "day-of-week field 'funday' is not valid, not understood"),
        ("@reboot", "it has 1 field(s)"),
        ("0 0 30 2 *", "never matches a date"),
        ("", "it has 0 field(s)"),
    ],
)
def test_bad_expressions_say_what_where_and_the_forms(expression: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    message = str(caught.value)
    assert fragment in message
    assert repr(" ".join(expression.split())) in message
    assert "expected 5 fields 'min hour dom mon dow'" in message
    assert "7 fields 'sec min hour dom mon dow year'" in message
    assert "@daily" in message


def test_non_string_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a string, got int"):
        parse_cron(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("zone", ["Europe/Pariss", "Mars/Olympus", "../etc/passwd", ""])
def test_unknown_timezone_is_refused(zone: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron("0 8 * * *", zone)
    assert f"unknown timezone {zone!r}" in str(caught.value)
    assert "'0 8 * * *'" in str(caught.value)
    assert "IANA" in str(caught.value)
