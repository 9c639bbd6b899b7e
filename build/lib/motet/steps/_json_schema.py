"""JSON Schema (2020-12) for step schemas, for OpenAPI documents and the console.

The output describes what `validate` accepts: objects forbid unknown keys, fields without a
default are required, an int is a valid number, and attrs' own validators become keywords
(`min_len`/`max_len` -> minLength/maxLength or minItems/maxItems, `ge`/`gt`/`le`/`lt` ->
minimum/exclusiveMinimum/maximum/exclusiveMaximum, `in_` -> enum, `matches_re` -> pattern;
through `and_`, lists, `optional` and `deep_iterable`). A validator that is a plain function
says nothing the schema can repeat. Classes are emitted once under `$defs` and referenced,
so recursive and shared classes stay finite.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime
import enum
import re
import types
import typing
import uuid
from typing import Any, Literal

import attrs

from ._schema import is_object_schema

__all__ = ["json_schema"]

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}

_SEQUENCES = (list, tuple, abc.Sequence, abc.MutableSequence)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


def json_schema(schema: Any, *, ref_prefix: str = "#/$defs/") -> dict[str, Any]:
    """The JSON Schema of a step schema type. `None` (no schema) gives `{}` (anything).

    Referenced classes are listed under `$defs`; pass `ref_prefix="#/components/schemas/"`
    and move `$defs` there to embed the result in an OpenAPI document.
    """
    builder = _Builder(ref_prefix)
    if schema is None:
        return {}
    root = builder.object_body(schema) if is_object_schema(schema) else builder.of(schema)
    if builder.defs:
        root = {**root, "$defs": dict(sorted(builder.defs.items()))}
    return root


class _Builder:
    def __init__(self, ref_prefix: str) -> None:
        self.ref_prefix = ref_prefix
        self.defs: dict[str, dict[str, Any]] = {}
        self._names: dict[Any, str] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        if tp is Any or tp is object:
            return {}
        if tp in _SCALARS:
            return dict(_SCALARS[tp])
        if isinstance(tp, typing.NewType):
            return self.of(tp.__supertype__)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.of(args[0])
        if origin is Literal:
            return {"enum": list(args)}
        if origin is typing.Union or isinstance(tp, types.UnionType):
            return {"anyOf": [self.of(a) for a in args]}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp], "title": tp.__name__}
        if is_object_schema(tp):
            return {"$ref": self.ref_prefix + self._define(tp)}
        container = origin or tp
        if container in _SEQUENCES or container in _SETS:
            if container is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
                return {
                    "type": "array",
                    "prefixItems": [self.of(a) for a in args],
                    "minItems": len(args),
                    "maxItems": len(args),
                }
            out: dict[str, Any] = {"type": "array"}
            if args:
                out["items"] = self.of(args[0])
            if container in _SETS:
                out["uniqueItems"] = True
            return out
        if container in _MAPPINGS:
            out = {"type": "object"}
            if len(args) == 2:
                out["additionalProperties"] = self.of(args[1])
            return out
        raise TypeError(f"no JSON Schema for {tp!r}")

    def _define(self, cls: Any) -> str:
        if cls in self._names:
            return self._names[cls]
        base = getattr(typing.get_origin(cls) or cls, "__name__", "Schema")
        name, n = base, 2
        while name in self.defs:
            name, n = f"{base}{n}", n + 1
        self._names[cls] = name
        self.defs[name] = {}  # reserved before recursing, so a self-reference resolves
        self.defs[name] = self.object_body(cls)
        return name

    def object_body(self, cls: Any) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        validators = _attrs_validators(cls)
        for name, tp, has_default in _fields(cls):
            properties[name] = self.of(tp)
            if name in validators:
                _constrain(properties[name], validators[name])
            if not has_default:
                required.append(name)
        out: dict[str, Any] = {
            "type": "object",
            "title": getattr(typing.get_origin(cls) or cls, "__name__", "Schema"),
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            out["required"] = required
        return out


def _fields(cls: Any) -> list[tuple[str, Any, bool]]:
    """(name, type, has_default) of every field, types resolved from string annotations."""
    origin = typing.get_origin(cls) or cls
    hints = typing.get_type_hints(origin, include_extras=True)
    if typing.is_typeddict(origin):
        # Under `from __future__ import annotations` Python 3.11 computes __required_keys__
        # without seeing NotRequired[...], so the resolved hints decide, as cattrs does.
        required_keys: frozenset[str] = getattr(origin, "__required_keys__", frozenset(hints))
        out = []
        for name, tp in hints.items():
            marker = typing.get_origin(tp)
            required = marker is typing.Required or (
                marker is not typing.NotRequired and name in required_keys
            )
            out.append((name, _strip_required(tp), not required))
        return out
    if attrs.has(origin):
        return [
            (a.name, hints.get(a.name, Any), a.default is not attrs.NOTHING)
            for a in attrs.fields(origin)
            if a.init
        ]
    return [
        (
            f.name,
            hints.get(f.name, Any),
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(origin)
        if f.init
    ]


def _attrs_validators(cls: Any) -> dict[str, Any]:
    origin = typing.get_origin(cls) or cls
    if not attrs.has(origin):
        return {}
    return {a.name: a.validator for a in attrs.fields(origin) if a.init and a.validator}


_BOUNDS = {">=": "minimum", ">": "exclusiveMinimum", "<=": "maximum", "<": "exclusiveMaximum"}
_JSON_SCALARS = (str, int, float, bool, type(None))


def _constrain(schema: dict[str, Any], validator: Any, *, optional: bool = False) -> None:
    """Add to `schema` the keywords that say what `validator` (attrs') enforces. attrs
    offers no public way to read a validator back, so its classes are recognised by name
    and their (stable since attrs 22) attributes read; an unknown one adds nothing."""
    kind = type(validator).__name__
    if kind == "_AndValidator":
        for inner in validator._validators:
            _constrain(schema, inner, optional=optional)
    elif kind == "_OptionalValidator":
        inner = validator.validator
        for one in inner if isinstance(inner, list | tuple) else (inner,):
            _constrain(schema, one, optional=True)
    elif kind in ("_MinLengthValidator", "_MaxLengthValidator"):
        bound = validator.min_length if kind == "_MinLengthValidator" else validator.max_length
        side = "min" if kind == "_MinLengthValidator" else "max"
        json_type = schema.get("type")
        if json_type in (None, "string"):
            schema[f"{side}Length"] = bound
        if json_type in (None, "array"):
            schema[f"{side}Items"] = bound
        if json_type == "object":
            schema[f"{side}Properties"] = bound
    elif kind == "_NumberValidator":
        bound = validator.bound
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            schema[_BOUNDS[validator.compare_op]] = bound
    elif kind == "_InValidator":
        options = list(validator.options)
        if all(isinstance(o, _JSON_SCALARS) for o in options):
            schema["enum"] = [*options, None] if optional and None not in options else options
    elif kind == "_MatchesReValidator":
        pattern = validator.pattern
        if pattern.flags & ~re.UNICODE:  # flags JSON Schema's pattern cannot carry
            return
        how = getattr(validator.match_func, "__name__", "")
        if how == "fullmatch":
            schema["pattern"] = f"^(?:{pattern.pattern})$"
        elif how == "match":
            schema["pattern"] = f"^(?:{pattern.pattern})"
        else:
            schema["pattern"] = pattern.pattern
    elif kind == "_DeepIterable":
        if validator.member_validator is not None and isinstance(schema.get("items"), dict):
            members = validator.member_validator
            for one in members if isinstance(members, list | tuple) else (members,):
                _constrain(schema["items"], one)
        if validator.iterable_validator is not None:
            _constrain(schema, validator.iterable_validator, optional=optional)


def _strip_required(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Required, typing.NotRequired):
        return typing.get_args(tp)[0]
    return tp
