"""The checks motet's options records share, as attrs validators, defined once.

Each is a small factory in the manner of `attrs.validators`, returning a validator whose
message names the field (`SupervisorOptions.period`), what was expected and what came:

    seconds()          a number of seconds: > 0 (or >= 0), finite unless allowed
    count()            an int at least `minimum` (1 unless told)
    non_empty()        a non-empty str
    one_of(...)        one of a few literal choices
    timezone()         an IANA timezone name that this host knows

`load_timezone` is the one place a timezone name is looked up; config readers and trigger
constructors that report errors their own way call it and reword its ValueError.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Callable
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _where(instance: Any, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(*, allow_zero: bool = False, allow_inf: bool = False) -> Validator:
    """A number of seconds: `> 0` (`>= 0` with `allow_zero`), finite unless `allow_inf`.
    A bool or a string is a TypeError; NaN, a negative or an excluded zero/inf a ValueError."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        where = _where(instance, attribute)
        if not _is_number(value):
            raise TypeError(f"{where} must be a number of seconds, got {value!r}")
        low = ">= 0" if allow_zero else "> 0"
        high = "" if allow_inf else " and finite"
        too_low = value < 0 or (value == 0 and not allow_zero)
        if math.isnan(value) or too_low or (math.isinf(value) and not allow_inf):
            raise ValueError(f"{where} must be {low} seconds{high}, got {value!r}")

    return check


def count(minimum: int = 1) -> Validator:
    """An int (not a bool) of at least `minimum`."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"{_where(instance, attribute)} must be an int >= {minimum}, got {value!r}"
            )

    return check


def non_empty() -> Validator:
    """A str with at least one character."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value:
            where = _where(instance, attribute)
            raise ValueError(f"{where} must be a non-empty str, got {value!r}")

    return check


def one_of(*choices: Any) -> Validator:
    """One of `choices` (compared with `in`)."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(
                f"{_where(instance, attribute)} must be one of "
                f"{', '.join(repr(c) for c in choices)}, got {value!r}"
            )

    return check


def load_timezone(name: Any) -> zoneinfo.ZoneInfo:
    """The zone called `name`; ValueError naming it if it is not a zone this host knows."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected an IANA timezone name like 'Europe/Paris', got {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; expected an IANA name like 'UTC' or 'Europe/Paris'"
        ) from None


def timezone() -> Validator:
    """An IANA timezone name (`'UTC'`, `'Europe/Paris'`) known to this host."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        try:
            load_timezone(value)
        except ValueError as exc:
            raise ValueError(f"{_where(instance, attribute)}: {exc}") from None

    return check
