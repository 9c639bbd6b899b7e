"""The shared checks: one wording for an options record's validator and a config reader."""

from __future__ import annotations

import math
from datetime import UTC

import attrs
import pytest

from motet._validators import count, load_timezone, non_empty, one_of, port, seconds, timezone


@attrs.frozen
class Options:
    wait: float = attrs.field(default=1.0, validator=seconds())
    grace: float = attrs.field(default=0.0, validator=seconds(allow_zero=True, allow_inf=True))
    workers: int = attrs.field(default=1, validator=count())
    name: str = attrs.field(default="a", validator=non_empty())
    mode: str = attrs.field(default="x", validator=one_of("x", "y"))
    zone: str = attrs.field(default="UTC", validator=timezone())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"wait": 0}, ValueError, "Options.wait must be a finite number of seconds > 0, got 0"),
        ({"wait": math.inf}, ValueError, "Options.wait must be a finite number of seconds > 0"),
        ({"wait": math.nan}, ValueError, "Options.wait must be a finite number of seconds > 0"),
        ({"wait": "5s"}, TypeError, "Options.wait must be a number of seconds, got '5s'"),
        ({"wait": True}, TypeError, "Options.wait must be a number of seconds, got True"),
        ({"grace": -1}, ValueError, "Options.grace must be a number of seconds >= 0, got -1"),
        ({"workers": 0}, ValueError, "Options.workers must be an integer >= 1, got 0"),
        ({"workers": 1.0}, TypeError, "Options.workers must be an integer, got 1.0"),
        ({"name": " "}, ValueError, "Options.name must be a non-empty string, got ' '"),
        ({"mode": "z"}, ValueError, "Options.mode must be one of ['x', 'y'], got 'z'"),
        ({"zone": "Mars/Olympus"}, ValueError, "Options.zone must be an IANA timezone name"),
    ],
)
def test_a_record_names_the_field_what_it_expected_and_what_came(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        Options(**kwargs)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message), str(caught.value)


def test_good_values_pass() -> None:
    options = Options(wait=0.5, grace=math.inf, workers=3, name="n", mode="y", zone="Asia/Tokyo")
    assert options.grace == math.inf


def test_a_reader_gets_the_same_words_without_the_record() -> None:
    assert seconds().problem(-2) == "expected a finite number of seconds > 0, got -2"
    assert count(0, unit=" (milliseconds)").problem(1.5) == (
        "expected an integer (milliseconds), got 1.5"
    )
    assert port().problem(70000) == "expected a port number 0-65535, got 70000"
    assert port().problem(True) == "expected a port number 0-65535, got True"
    assert port().problem(0) is None
    assert one_of("a").problem("a") is None


@pytest.mark.parametrize("zone", ["Europe/Pariss", "../etc/passwd", "", 3])
def test_an_unknown_timezone_is_named(zone: object) -> None:
    with pytest.raises(ValueError) as caught:
        load_timezone(zone)
    assert repr(zone) in str(caught.value)
    assert "IANA" in str(caught.value)
    assert load_timezone("Europe/Paris").key == "Europe/Paris"


def test_utc_is_the_standard_librarys_utc_and_other_spellings_are_zones() -> None:
    # The default needs no zone database (nor the zoneinfo import): datetime's own UTC.
    assert load_timezone("UTC") is UTC
    assert load_timezone("Etc/UTC").key == "Etc/UTC"
    with pytest.raises(ValueError, match="'utc'"):
        load_timezone("utc")  # zone names are case-sensitive, as before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retry_jitter": 2.0}, "RuntimeOptions.retry_jitter must be a number from 0 to 1"),
        ({"shutdown_timeout": -1}, "RuntimeOptions.shutdown_timeout must be a finite number"),
        ({"restart_intensity": -1}, "RuntimeOptions.restart_intensity must be an integer >= 0"),
        ({"restart_period": 0}, "RuntimeOptions.restart_period must be a finite number"),
    ],
)
def test_runtime_options_refuse_nonsense(kwargs: dict[str, object], message: str) -> None:
    from motet import RuntimeOptions

    with pytest.raises(ValueError, match=message):
        RuntimeOptions(**kwargs)  # type: ignore[arg-type]
