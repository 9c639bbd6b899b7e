"""Where a step config value sits, and the small checks every config field goes through.

Every loading error names the file, the step and the field (`triggers[1].path`), so the
checks take a `Where` and raise the StepDefinitionError it builds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from .._envelope import CRON_TOPIC_PREFIX, STATE_TOPIC_PREFIX
from .._errors import StepDefinitionError
from ._schema import schema_problem

__all__ = ["Where"]

_RESERVED_PREFIXES = (CRON_TOPIC_PREFIX, STATE_TOPIC_PREFIX)


@attrs.frozen
class Where:
    """File, step and field prefix of the config being checked; all optional."""

    file: Path | None = None
    step: str | None = None
    prefix: str = ""

    def field(self, name: str | None) -> str | None:
        if not name:
            return self.prefix or None
        if not self.prefix:
            return name
        return f"{self.prefix}{name}" if name.startswith("[") else f"{self.prefix}.{name}"

    def at(self, name: str) -> Where:
        """The same place, one field deeper: `Where(prefix="triggers[0]").at("path")`."""
        return attrs.evolve(self, prefix=self.field(name) or "")

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        raise StepDefinitionError(message, file=self.file, step=self.step, field=self.field(field))


def reject_unknown(where: Where, given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    """Unknown keys are an error that lists them and every allowed key."""
    allowed_set = set(allowed)
    unknown = sorted(str(k) for k in given if k not in allowed_set)
    if unknown:
        listed = ", ".join(repr(k) for k in unknown)
        where.fail(
            f"unknown key{'s' if len(unknown) > 1 else ''} {listed} in {what}; "
            f"allowed: {', '.join(sorted(allowed_set))}",
            unknown[0],
        )


def pick(where: Where, raw: Mapping[str, Any], *spellings: str) -> tuple[str | None, Any]:
    """The value of the one spelling present (`body`, `bodySchema`, ...); two is an error."""
    present = [s for s in spellings if raw.get(s) is not None]
    if len(present) > 1:
        where.fail(f"given twice, as {present[0]!r} and {present[1]!r}", present[1])
    if not present:
        return None, None
    return present[0], raw[present[0]]


def text(where: Where, field: str, value: Any, what: str = "a non-empty string") -> str:
    if not isinstance(value, str) or not value.strip():
        where.fail(f"expected {what}, got {value!r}", field)
    return value


def topic(where: Where, field: str, value: Any) -> str:
    """A topic users may publish to or subscribe to: not empty, no reserved prefix."""
    name = text(where, field, value, "a topic name (non-empty string)")
    if name != name.strip():
        where.fail(f"topic {name!r} has leading or trailing whitespace", field)
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            where.fail(f"topic {name!r} uses the prefix {prefix!r}, reserved for motet", field)
    return name


def string_list(where: Where, field: str, value: Any, *, topics: bool = False) -> tuple[str, ...]:
    """A list of strings (a lone string is refused: `"a.b"` would read as 4 characters)."""
    if not isinstance(value, list | tuple):
        where.fail(f"expected a list of strings, got {value!r}", field)
    check = topic if topics else text
    return tuple(check(where, f"{field}[{i}]", item) for i, item in enumerate(value))


def number(where: Where, field: str, value: Any, *, minimum: float = 0.0, strict: bool) -> float:
    """A number of seconds, `> minimum` when strict, else `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        where.fail(f"expected a number of seconds, got {value!r}", field)
    if (value <= minimum if strict else value < minimum) or value == float("inf"):
        sign = ">" if strict else ">="
        where.fail(f"expected a number of seconds {sign} {minimum:g}, got {value!r}", field)
    return float(value)


def flag(where: Where, field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        where.fail(f"expected true or false, got {value!r}", field)
    return value


def schema(where: Where, field: str, value: Any) -> Any:
    """A payload schema type, checked now so a bad one fails at load, not on a message."""
    problem = schema_problem(value)
    if problem is not None:
        where.fail(problem, field)
    return value
