"""Query strings are text: before a query schema validates them, the values of fields typed
int, float or bool (or lists of those) are converted, and a lone value of a list field
becomes a one-item list. Anything that does not convert is left as text, so the strict
converter reports it in its own words (`invalid value for type, expected int @ $.query.n`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs

_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_LISTS = (list, tuple, set, frozenset, typing.Sequence, typing.AbstractSet)


def _field_types(schema: Any) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # unresolvable annotations: no conversion, validation still runs
        return {}
    if attrs.has(schema):
        return {f.alias or f.name: hints.get(f.name, Any) for f in attrs.fields(schema)}
    if dataclasses.is_dataclass(schema):
        return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(schema)}
    return hints  # a TypedDict


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _scalar(text: str, tp: Any) -> Any:
    try:
        if tp is bool:
            return _BOOLS.get(text.lower(), text)
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        pass
    return text


def coerce_query(query: Mapping[str, str | list[str]], schema: Any) -> dict[str, Any]:
    types_by_name = _field_types(schema)
    out: dict[str, Any] = {}
    for name, value in query.items():
        tp = _strip_optional(types_by_name.get(name, Any))
        origin = typing.get_origin(tp) or tp
        if origin in _LISTS:
            args = typing.get_args(tp)
            item = _strip_optional(args[0]) if args else Any
            values = value if isinstance(value, list) else [value]
            out[name] = [_scalar(v, item) for v in values]
        elif isinstance(value, list):
            out[name] = value  # repeated, but the schema wants one: the converter says so
        else:
            out[name] = _scalar(value, tp)
    return out
