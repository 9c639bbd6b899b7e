"""Copying and comparing JSON values as a serializing backend would see them.

`json_copy` is what a JSON round trip does to a value, minus the text: tuples become lists,
str/int/float subclasses (enums) become their base type, and anything JSON cannot hold is
refused. `json_equal` compares as JSON does: `1`, `1.0` and `true` are three different
values (Python's `==` says they are equal), key order does not matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._envelope import JSON
from .._errors import BackendError

_SCALARS = (str, int, float, bool, type(None))
# Exact types (no subclasses) of the values a flat dict is copied as is: the most common
# payload, checked and copied with C-level set and dict operations instead of a loop.
FLAT_VALUES = frozenset(_SCALARS)
STR_KEYS = frozenset({str})


def json_copy(value: JSON, *, where: str | Callable[[], str] = "value") -> JSON:
    """A deep copy made of dict / list / str / int / float / bool / None only; `where`
    names the value in the error (a callable, to build the name only on failure)."""
    if (
        type(value) is dict
        and FLAT_VALUES.issuperset(map(type, value.values()))
        and STR_KEYS.issuperset(map(type, value))
    ):
        return value.copy()  # `_copy`'s first case, without its call
    try:
        return _copy(value)
    except _NotJSON:
        path, got = _find_bad(value, "$")
        name = where if isinstance(where, str) else where()
        raise BackendError(
            f"{name} is not JSON at {path}: expected dict (with str keys), list, str, "
            f"int, float, bool or None, got {got}"
        ) from None


def json_clone(value: JSON) -> JSON:
    """A deep copy of a value `json_copy` already produced (no checks: the fast path)."""
    if type(value) is dict:
        if FLAT_VALUES.issuperset(map(type, value.values())):
            return value.copy()
        return {
            k: json_clone(v) if type(v) is dict or type(v) is list else v for k, v in value.items()
        }
    if type(value) is list:
        return [json_clone(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


class _NotJSON(Exception):
    pass


def _copy(value: Any) -> JSON:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        if FLAT_VALUES.issuperset(map(type, value.values())) and STR_KEYS.issuperset(
            map(type, value)
        ):
            return value.copy()
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise _NotJSON
            t = type(v)  # scalars inline: most payloads are flat
            out[k] = v if t is str or t is int or t is float or t is bool or v is None else _copy(v)
        return out
    if kind is list or kind is tuple:
        return [_copy(v) for v in value]
    # Subclasses, as json.dumps treats them: bool before int (bool is an int subclass).
    if isinstance(value, str):
        return str.__str__(value)  # its text: `str()` of a (str, Enum) member is its name
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return _copy(dict(value))
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    raise _NotJSON


def _find_bad(value: Any, path: str) -> tuple[str, str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return path, f"key {k!r} ({type(k).__name__})"
            found = _find_bad(v, f"{path}.{k}")
            if found[0]:
                return found
        return "", ""
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _find_bad(v, f"{path}[{i}]")
            if found[0]:
                return found
        return "", ""
    if isinstance(value, _SCALARS):
        return "", ""
    return path, f"{type(value).__name__} {value!r}"


def json_equal(a: JSON, b: JSON) -> bool:
    """Equality of two `json_copy`-normalized values, telling 1, 1.0 and true apart."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
