"""The checks motet's options records and config readers share, defined once.

Each is a small factory in the manner of `attrs.validators`, returning a validator whose
message names the field (`SupervisorOptions.period`), what was expected and what came:

    seconds()          a number of seconds: > 0 (or >= 0), finite unless allowed
    count()            an int at least `minimum` (1 unless told)
    non_empty()        a non-blank str
    one_of(...)        one of a few literal choices
    fraction()         a number from 0 to 1
    port()             a TCP port number, 0 for any free one
    timezone()         an IANA timezone name that this host knows

Each is a `Check`: config readers, which report problems with their file and field rather
than a record's, ask it `problem(value)` and get the same words ("expected ..., got ...").

`load_timezone` is the one place a timezone name is looked up; config readers and trigger
constructors that report errors their own way call it and reword its ValueError. `zoneinfo`
is imported only for a zone other than UTC, the default: it reads the interpreter's build
configuration (`sysconfig`) for its search path, about 0.3 MiB a served process would
otherwise keep for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

import attrs


@attrs.frozen
class Check:
    """One rule for a value, said once in words (`expected`) and used two ways: as an attrs
    validator (`Owner.field must be <expected>, got <value>`), and by config readers, which
    report problems with their own file and field, through `problem(value)`.

    A value failing `is_kind` is of the wrong type (a TypeError as a validator, "expected
    <kind>" for a reader); one failing `accepts` has the right type but a wrong value.
    """

    expected: str
    accepts: Callable[[Any], bool]
    kind: str = ""
    is_kind: Callable[[Any], bool] | None = None

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        where = f"{type(instance).__name__}.{attribute.name}"
        if self.is_kind is not None and not self.is_kind(value):
            raise TypeError(f"{where} must be {self.kind}, got {value!r}")
        if not self.accepts(value):
            raise ValueError(f"{where} must be {self.expected}, got {value!r}")

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` ("expected ..., got ..."), or None if nothing is."""
        if self.is_kind is not None and not self.is_kind(value):
            return f"expected {self.kind}, got {value!r}"
        if not self.accepts(value):
            return f"expected {self.expected}, got {value!r}"
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seconds(*, allow_zero: bool = False, allow_inf: bool = False) -> Check:
    """A number of seconds: `> 0` (`>= 0` with `allow_zero`), finite unless `allow_inf`.
    A bool or a string is of the wrong kind; NaN is a wrong value."""
    finite = "" if allow_inf else "finite "
    low = ">= 0" if allow_zero else "> 0"

    def accepts(value: Any) -> bool:
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            return False
        return bool(value >= 0 if allow_zero else value > 0)

    return Check(f"a {finite}number of seconds {low}", accepts, "a number of seconds", is_number)


def count(minimum: int = 1, *, unit: str = "") -> Check:
    """An int (not a bool) of at least `minimum`; `unit` (" (milliseconds)") is said after."""
    return Check(
        f"an integer >= {minimum}{unit}",
        lambda value: bool(value >= minimum),
        f"an integer{unit}",
        is_int,
    )


def non_empty() -> Check:
    """A str with at least one character that is not blank."""
    return Check("a non-empty string", lambda value: isinstance(value, str) and bool(value.strip()))


def one_of(*choices: Any) -> Check:
    """One of `choices` (compared with `in`)."""
    return Check(f"one of {list(choices)}", lambda value: value in choices)


def fraction() -> Check:
    """A number from 0 to 1, both included."""
    return Check("a number from 0 to 1", lambda value: bool(0 <= value <= 1), "a number", is_number)


def port() -> Check:
    """A TCP port number; 0 lets the system pick a free one."""
    return Check("a port number 0-65535", lambda value: is_int(value) and 0 <= value <= 65535)


def load_timezone(name: Any) -> tzinfo:
    """The zone called `name` (`datetime.UTC` for "UTC", else a `ZoneInfo`); ValueError
    naming it if it is not a zone this host knows."""
    if not isinstance(name, str):
        raise ValueError(f"expected an IANA timezone name like 'Europe/Paris', got {name!r}")
    if name == "UTC":
        return UTC
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; expected an IANA name like 'UTC' or 'Europe/Paris'"
        ) from None


def timezone() -> Check:
    """An IANA timezone name (`'UTC'`, `'Europe/Paris'`) known to this host."""

    def accepts(value: Any) -> bool:
        try:
            load_timezone(value)
        except ValueError:
            return False
        return True

    return Check("an IANA timezone name like 'UTC' or 'Europe/Paris'", accepts)
