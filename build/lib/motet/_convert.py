"""motet's own records as JSON: the wire shape is stated on the fields, one converter reads it.

The state-change events, the telemetry rows, the operator API's bodies and the JSON log lines
are `@attrs.frozen` records turned into JSON objects by `unstructure(record)` and read back by
`structure(data, cls)`. Where the JSON differs from the attribute, the field says so with
`wire(...)` metadata:

- `key="msg"`: the JSON key when it is not the attribute's name;
- `omit_none=True`: the key is left out when the value is None;
- `flatten=True`: the field's own object (a mapping, or a record) is merged into the record's.

Fields with `init=False` (derived values such as a duration) are written and never read.

This converter is not the one a `Runtime` owns for handler data (`motet.steps.make_converter`,
strict about user input): it sits in the bottom layer, below the records of every layer that
uses it (logging, state, backends, telemetry), and it holds no per-class registry: the hooks
are generated from the fields, so no module registers anything into it.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

T = TypeVar("T")

_WIRE = "motet.wire"


def wire(
    *, key: str | None = None, omit_none: bool = False, flatten: bool = False
) -> dict[str, Any]:
    """Field metadata: `attrs.field(metadata=wire(key="msg"))`."""
    return {_WIRE: {"key": key, "omit_none": omit_none, "flatten": flatten}}


def _options(field: attrs.Attribute[Any]) -> dict[str, Any]:
    options: dict[str, Any] = field.metadata.get(_WIRE, {})
    return options


def _unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
    plan = []
    for field in attrs.fields(cls):
        options = _options(field)
        key = options.get("key") or field.name
        plan.append((field.name, key, options.get("omit_none", False), options.get("flatten")))

    def unstructure(record: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, omit_none, flatten in plan:
            value = getattr(record, name)
            if omit_none and value is None:
                continue
            if flatten:
                out.update(value if isinstance(value, Mapping) else _converter.unstructure(value))
            else:
                out[key] = _converter.unstructure(value)
        return out

    return unstructure


def _structure_factory(cls: type) -> Callable[[Any, Any], Any]:
    renames: dict[str, Any] = {
        field.name: override(rename=_options(field)["key"])
        for field in attrs.fields(cls)
        if _options(field).get("key")
    }
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, _converter, **renames)

    def structure(data: Any, _: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"{cls.__name__} must be a JSON object, got {data!r}")
        return inner(data, cls)

    return structure


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


_converter = cattrs.Converter(detailed_validation=False)
# A record checks its own values (attrs validators, with messages naming the field): Literal
# and scalar fields are passed through to them as read, not refused or coerced by cattrs.
_converter.register_structure_hook_func(_is_literal, lambda value, _: value)
for _scalar in (str, int, float, bool):  # not str(5) == "5": the validators see what came
    _converter.register_structure_hook(_scalar, lambda value, _: value)
_converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)
_converter.register_structure_hook_factory(attrs.has, _structure_factory)


def unstructure(record: Any) -> Any:
    """The JSON form of a record (or of a list / tuple / dict of records)."""
    return _converter.unstructure(record)


def structure(data: Any, cls: type[T]) -> T:
    """The record of type `cls` read back from its JSON form; a value that does not fit
    raises ValueError / KeyError / TypeError from the record's own checks."""
    return _converter.structure(data, cls)
