"""Payload schemas: one strict cattrs converter per Runtime, validation and JSON output.

A schema is one of three kinds, all validated by `validate` with the same message shape
(`<message> @ <path>`):

- a type: an attrs class, a dataclass, a TypedDict, a JSON scalar type, or
  `list`/`dict`/`Optional`/`Literal`/`Enum` built from those, structured by the runtime's
  converter (the handler gets the structured object);
- a JSON Schema document, loaded into a `JsonSchema` (`_schema_dict`; the handler gets the
  JSON as it arrived);
- a pydantic model class, when the step file imported pydantic (`_schema_pydantic`; the
  handler gets the model instance).

`None` means "no schema": the handler gets the JSON as it arrived.

cattrs is a converter, not a validator, so `make_converter` makes it strict: JSON scalars
must already have the right type ("5" is not an int, "false" is not a bool, 5.9 is not an
int; an int is a valid float), objects must be JSON objects without unknown keys, and arrays
must be JSON arrays (a string is not a list of characters).
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime
import enum
import math
import sys
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import cattrs
from cattrs.cols import is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import BaseValidationError
from cattrs.gen import make_dict_structure_fn
from cattrs.gen.typeddicts import make_dict_structure_fn as make_typeddict_structure_fn
from cattrs.preconf.json import make_converter as make_json_converter
from cattrs.v import format_exception, transform_error

from .._errors import InputValidationError
from ._schema_dict import JsonSchema, JsonSchemaProblem, load_json_schema
from ._schema_pydantic import dump_model, is_model_class, validate_model

__all__ = [
    "is_object_schema",
    "json_type_name",
    "load_schema",
    "make_converter",
    "schema_problem",
    "to_json",
    "validate",
]


class NotAnObjectError(TypeError):
    """The payload is not a JSON object where a schema class expects one."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f"expected an object, got {json_type_name(value)}")


class NotAnArrayError(TypeError):
    """The payload is not a JSON array where a list, set or tuple is expected."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f"expected an array, got {json_type_name(value)}")


def json_type_name(value: object) -> str:
    """The JSON name of a value's type, for messages: `object`, `array`, `string`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def is_object_schema(tp: Any) -> bool:
    """An attrs class, dataclass or TypedDict: a schema structured from a JSON object."""
    origin = typing.get_origin(tp) or tp
    if not isinstance(origin, type):
        return False
    return attrs.has(origin) or dataclasses.is_dataclass(origin) or typing.is_typeddict(origin)


def _strict_scalar(accepted: tuple[type, ...]) -> Callable[[Any, type], Any]:
    # `type(v) in accepted`, not isinstance: True must not pass as an int.
    def hook(value: Any, tp: type) -> Any:
        if type(value) not in accepted:
            raise TypeError(f"expected {tp.__name__}, got {json_type_name(value)}")
        return tp(value)

    return hook


def _from_text(parse: Callable[[str], Any]) -> Callable[[Any, Any], Any]:
    def hook(value: Any, tp: Any) -> Any:
        if type(value) is not str:
            raise TypeError(f"expected a string, got {json_type_name(value)}")
        return parse(value)  # ValueError for text that is not one

    return hook


def make_converter() -> cattrs.Converter:
    """The strict JSON converter a Runtime owns; nothing in motet uses a global one."""
    conv = make_json_converter(forbid_extra_keys=True)
    for tp, accepted in (
        (int, (int,)),
        (bool, (bool,)),
        (str, (str,)),
        (float, (int, float)),
    ):
        conv.register_structure_hook(tp, _strict_scalar(accepted))
    # Declared schema types (`_SCALAR_SCHEMAS`, JSON Schema `format`s) the preconf converter
    # does not know: a UUID or a time of day is a JSON string both ways.
    conv.register_structure_hook(uuid.UUID, _from_text(uuid.UUID))
    conv.register_unstructure_hook(uuid.UUID, str)
    conv.register_structure_hook(datetime.time, _from_text(datetime.time.fromisoformat))
    conv.register_unstructure_hook(datetime.time, datetime.time.isoformat)

    def object_factory(tp: Any) -> Callable[[Any, Any], Any]:
        origin = typing.get_origin(tp) or tp
        if typing.is_typeddict(origin):
            inner = make_typeddict_structure_fn(tp, conv, _cattrs_forbid_extra_keys=True)
        else:
            inner = make_dict_structure_fn(tp, conv, _cattrs_forbid_extra_keys=True)

        def structure_object(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise NotAnObjectError(value)
            return inner(dict(value), tp)

        return structure_object

    def array_factory(tp: Any) -> Callable[[Any, Any], Any]:
        args = typing.get_args(tp)
        elem = args[0] if args else Any
        as_list = list_structure_factory(list[elem], conv)  # type: ignore[valid-type]
        origin = typing.get_origin(tp) or tp
        container: Callable[[list[Any]], Any] = list
        if origin in (frozenset, abc.Set):
            container = frozenset
        elif origin in (set, abc.MutableSet):
            container = set
        elif origin is tuple:
            container = tuple

        def structure_array(value: Any, _: Any) -> Any:
            if not isinstance(value, list | tuple):
                raise NotAnArrayError(value)
            items = as_list(list(value), list[elem])  # type: ignore[valid-type]
            return items if container is list else container(items)

        return structure_array

    def mapping_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = mapping_structure_factory(tp, conv)

        def structure_mapping(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise NotAnObjectError(value)
            return inner(value, tp)

        return structure_mapping

    # A pydantic model going out (an emit, a state value, a response body), alone or nested.
    conv.register_unstructure_hook_func(is_model_class, dump_model)
    conv.register_structure_hook_factory(_is_plain_mapping, mapping_factory)
    conv.register_structure_hook_factory(is_object_schema, object_factory)
    conv.register_structure_hook_factory(_is_homogeneous_array, array_factory)
    return conv


def _is_plain_mapping(tp: Any) -> bool:
    return not is_object_schema(tp) and is_mapping(tp)


def _is_homogeneous_array(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    if origin in (set, frozenset, abc.Set, abc.MutableSet):
        return True
    return origin is not str and is_sequence(tp)


def _format(exc: BaseException, tp: Any) -> str:
    """cattrs' messages, with Literal/Enum choices spelled out and JSON type names."""
    if isinstance(exc, NotAnObjectError | NotAnArrayError):
        return str(exc)
    if typing.get_origin(tp) is Literal:
        return f"must be one of {list(typing.get_args(tp))}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"must be one of {[m.value for m in tp]}"
    if isinstance(exc, ValueError) and tp is None and str(exc):
        # An attrs validator's own message; `matches_re` and `in_` raise it with the
        # attribute, the pattern and the value as further args, which say nothing more.
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        return f"invalid value ({first})"
    return format_exception(exc, tp)


def validate(
    converter: cattrs.Converter,
    payload: Any,
    schema: Any,
    *,
    root: str = "$",
    what: str = "input",
) -> object:
    """Structure `payload` into `schema`, or raise InputValidationError listing every
    problem as `<message> @ <path>` (paths start at `root`, e.g. `$.body`)."""
    if schema is None:
        return payload
    if type(schema) is JsonSchema:
        return schema.validate(payload, root=root, what=what)
    if is_model_class(schema):
        return validate_model(schema, payload, root=root, what=what)
    try:
        return converter.structure(payload, schema)
    except BaseValidationError as exc:
        messages = transform_error(exc, path=root, format_exception=_format)
        _clear_frames(exc)
        raise InputValidationError(messages, what=what) from exc
    except Exception as exc:  # a failure at the root is not wrapped by cattrs
        raise InputValidationError([f"{_format(exc, schema)} @ {root}"], what=what) from exc


def _clear_frames(error: BaseException) -> None:
    """Clear the locals of the finished frames `error`, and every error it groups, came
    through (their tracebacks still print). cattrs's structuring functions collect the
    errors they catch in a local list, and each error's traceback holds that frame: a cycle,
    which through the frames' callers held the payload being validated (a request's body,
    its connection) until the collector's next pass, for every payload refused."""
    pending = [error]
    while pending:
        exc = pending.pop()
        traceback.clear_frames(exc.__traceback__)  # the running ones are left as they are
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)


def to_json(converter: cattrs.Converter, value: Any) -> Any:
    """Unstructure handler output / emitted data to plain JSON (dict/list/str/number/bool/None).

    Raises TypeError naming the path of the first value that has no JSON form.
    """
    if type(value) is dict and _flat_plain(value):
        return dict(value)  # the common emit payload: skip cattrs and the deep walk
    try:
        try:
            plain = converter.unstructure(value)
        except RecursionError:
            raise
        except Exception as exc:  # e.g. a tuple used as a dict key
            raise TypeError(f"cannot convert {type(value).__name__} to JSON: {exc}") from exc
        return _check_json(plain, "$")
    except RecursionError:
        raise TypeError(
            f"cannot convert {type(value).__name__} to JSON: it holds itself, or it is nested "
            f"deeper than Python's recursion limit ({sys.getrecursionlimit()}) lets motet "
            "walk; flatten it, or store the deep part as a JSON string"
        ) from None


_FLAT = (str, int, bool, type(None))


def _flat_plain(value: dict[Any, Any]) -> bool:
    """A dict with str keys whose values are all JSON scalars (finite floats)."""
    for key, item in value.items():
        if type(key) is not str:
            return False
        kind = type(item)
        if kind in _FLAT:
            continue
        if kind is not float or item != item or item in (math.inf, -math.inf):
            return False
    return True


def _check_json(value: Any, path: str) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"{value!r} is not a JSON number @ {path}")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise TypeError(f"object key {key!r} is not a string @ {path}")
            out[str(key)] = _check_json(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_check_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{type(value).__name__} is not JSON-serializable @ {path}")


SUPPORTED = (
    "an attrs class, a dataclass, a TypedDict, str/int/float/bool, an Enum, "
    "or list/dict/Optional/Literal of those; a JSON Schema dict; a pydantic model class"
)
_SCALAR_SCHEMAS = (
    str,
    int,
    float,
    bool,
    type(None),
    datetime.datetime,
    datetime.date,
    datetime.time,
    uuid.UUID,
)


def schema_problem(tp: Any) -> str | None:
    """Why `tp` cannot be a step schema, or None when it can. Checked at load time so a
    bad schema is a StepDefinitionError, not a failure on the first message."""
    if isinstance(tp, Mapping):
        try:
            load_json_schema(tp)
        except JsonSchemaProblem as exc:
            return str(exc)
        return None
    return _problem(tp, set())


def load_schema(value: Any) -> Any:
    """The schema a step keeps for what its file wrote: a dict compiled into a `JsonSchema`,
    anything else as given. Raises ValueError saying why `value` cannot be a schema."""
    if isinstance(value, Mapping):
        return load_json_schema(value)
    problem = _problem(value, set())
    if problem is not None:
        raise ValueError(problem)
    return value


def _problem(tp: Any, seen: set[Any]) -> str | None:
    if type(tp) is JsonSchema or is_model_class(tp):
        return None  # checked when loaded (a dict) or by pydantic when the class was made
    if tp is None or tp is Any or tp is object or tp in _SCALAR_SCHEMAS:
        return None
    if isinstance(tp, typing.NewType):
        return _problem(tp.__supertype__, seen)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _problem(args[0], seen)
    if origin is Literal:
        bad = [a for a in args if not isinstance(a, str | int | bool | enum.Enum | None)]
        return f"Literal values must be JSON scalars, got {bad!r}" if bad else None
    if origin is typing.Union or isinstance(tp, types.UnionType):
        return _first(_problem(a, seen) for a in args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return None
    if is_object_schema(tp):
        return _object_problem(tp, seen)
    if origin is not None and (is_mapping(tp) or _is_homogeneous_array(tp)):
        if is_mapping(tp) and args and args[0] is not str:
            return f"object keys are strings in JSON; {tp!r} has keys of type {args[0]!r}"
        return _first(_problem(a, seen) for a in args if a is not Ellipsis)
    if tp in (list, dict, tuple, set, frozenset):
        return None
    if isinstance(tp, type):
        return f"{tp.__qualname__} is not a supported schema type; use {SUPPORTED}"
    if isinstance(tp, Mapping):  # a JSON Schema inside a type, e.g. list[{...}]
        return f"a JSON Schema dict is a schema on its own, not a part of a type: {tp!r:.60}"
    return f"a schema must be ({SUPPORTED}), got {type(tp).__name__} {tp!r:.60}"


def _object_problem(tp: Any, seen: set[Any]) -> str | None:
    origin = typing.get_origin(tp) or tp
    if origin in seen:
        return None
    seen.add(origin)
    try:
        hints = typing.get_type_hints(origin, include_extras=True)
    except Exception as exc:  # NameError for an annotation that names nothing importable
        return f"cannot resolve the annotations of {origin.__qualname__}: {exc}"
    if typing.is_typeddict(origin):
        required: frozenset[str] = getattr(origin, "__required_keys__", frozenset())
        for name, hint in hints.items():
            if typing.get_origin(hint) is typing.NotRequired and name in required:
                # Python 3.11 computes __required_keys__ without seeing string annotations.
                return (
                    f"{origin.__qualname__}.{name} is NotRequired[...] but Python "
                    f"{sys.version_info.major}.{sys.version_info.minor} sees it as required "
                    "under `from __future__ import annotations`; define the TypedDict in a "
                    "module without that import, or split it with total=False"
                )
    for name, hint in hints.items():
        if typing.get_origin(hint) in (typing.Required, typing.NotRequired, typing.ClassVar):
            hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        problem = _problem(hint, seen)
        if problem is not None:
            return f"{origin.__qualname__}.{name}: {problem}"
    return None


def _first(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)
