"""JSON Schema documents as step schemas: what Motia projects write (`Pet.model_json_schema()`).

A dict given where a schema goes is a JSON Schema document (draft 2020-12 unless its
`$schema` names another). It is checked and compiled once, when the step loads, into a
`JsonSchema`: an invalid document, a `$ref` to nothing, or a `$ref` to another file or URL is
a load error, never a failure on the first request. Validation is jsonschema-rs (compiled
Rust; `bench/bench_schemas.py` measures it against fastjsonschema, jsonschema and motet's
cattrs path): the payload is checked, not converted, so the handler gets the JSON as it
arrived, as in Motia. `format` is enforced (`date-time`, `uuid`, `email`, ...), as pydantic
enforces it on the models the document came from.

Every problem becomes `<message> @ <path>`, the shape of cattrs' messages for class schemas
(`required field missing @ $.body.tags[1].name`), so the gateway's 400 problem and a dead
letter read the same whichever kind of schema the step uses. jsonschema-rs is imported when
the first document compiles, so `import motet` does not load it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._errors import InputValidationError

__all__ = ["JsonSchema", "JsonSchemaProblem", "json_path", "load_json_schema"]


class JsonSchemaProblem(ValueError):
    """A dict given as a schema is not a usable JSON Schema document (the message says where)."""


@attrs.frozen
class JsonSchema:
    """A JSON Schema document, compiled. Two are equal when their documents are."""

    document: Mapping[str, Any] = attrs.field(eq=False, repr=lambda d: _short(d))
    key: str = attrs.field(repr=False)  # the canonical JSON text of `document`
    validator: Any = attrs.field(eq=False, repr=False)

    @property
    def title(self) -> str | None:
        title = self.document.get("title")
        return title if isinstance(title, str) else None

    def validate(self, payload: Any, *, root: str = "$", what: str = "input") -> Any:
        """`payload` itself when it matches; else InputValidationError listing every
        problem as `<message> @ <path>`, paths starting at `root`."""
        if self.validator.is_valid(payload):
            return payload
        messages = list(dict.fromkeys(_messages(self.validator.iter_errors(payload), root)))
        raise InputValidationError(messages or [f"invalid value @ {root}"], what=what)


def _short(document: Mapping[str, Any]) -> str:
    """A repr that fits a log line: the title, else the start of the JSON."""
    title = document.get("title")
    return repr(title) if isinstance(title, str) else f"{json.dumps(document)[:60]!r}"


def load_json_schema(document: Any) -> JsonSchema:
    """Check and compile `document`; JsonSchemaProblem says what is wrong and where."""
    if not isinstance(document, Mapping):
        raise JsonSchemaProblem(f"a JSON Schema must be an object, got {type(document).__name__}")
    try:
        key = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JsonSchemaProblem(f"a JSON Schema must be plain JSON: {exc}") from None
    plain: dict[str, Any] = json.loads(
        key
    )  # a copy: later changes to the caller's dict are not seen
    import jsonschema_rs

    try:
        jsonschema_rs.meta.validate(plain)
        validator = jsonschema_rs.validator_for(
            plain, validate_formats=True, retriever=_refuse_remote
        )
    except jsonschema_rs.ValidationError as exc:
        where = _pointer(exc.instance_path)
        first = str(exc.message).splitlines()[0]
        raise JsonSchemaProblem(
            f"not a valid JSON Schema: {first}" + (f" (at {where})" if where else "")
        ) from None
    except Exception as exc:  # a referencing or regex error from the compiler
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise JsonSchemaProblem(f"not a valid JSON Schema: {first}") from None
    return JsonSchema(document=plain, key=key, validator=validator)


def _refuse_remote(uri: str) -> Any:
    # Loading a step never touches the network: every `$ref` must point inside the document.
    raise ValueError(f"$ref {uri!r} points outside the schema; put the definition under $defs")


def _pointer(path: Sequence[Any]) -> str:
    return "".join(f"/{part}" for part in path)


def json_path(root: str, parts: Iterable[Any]) -> str:
    """`$.body` + `["tags", 0, "name"]` -> `$.body.tags[0].name` (cattrs' path spelling;
    a key that is not an identifier reads `['a key']`)."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _messages(errors: Iterable[Any], root: str) -> Iterable[str]:
    for error in errors:
        kind = error.kind
        path = list(error.instance_path)
        name = type(kind).__name__
        if name == "Required":
            yield f"required field missing @ {json_path(root, [*path, kind.property])}"
        elif name == "AnyOf" and (inner := _non_null_branch(kind.context)) is not None:
            # `Optional[Tag]` is anyOf [Tag, null]: what is wrong is what Tag says.
            yield from _messages(inner, root)
        else:
            yield f"{error.message} @ {json_path(root, path)}"


def _non_null_branch(branches: Sequence[Sequence[Any]]) -> Sequence[Any] | None:
    """The errors of the one branch that is not `{"type": "null"}`, for a nullable anyOf."""
    if len(branches) != 2:
        return None
    for this, other in (branches, branches[::-1]):
        only: Any = other[0].kind if len(other) == 1 else None
        if type(only).__name__ == "Type" and list(only.types) == ["null"]:
            return this
    return None


# -- query strings: which properties are numbers, booleans or arrays ------------------------


def property_types(document: Mapping[str, Any]) -> dict[str, Any]:
    """Each top-level property of an object schema as a Python type (`int`, `float`, `bool`,
    `str`, `list[int]`, ...; `Any` when unsure), so query text converts before validation
    as it does for class schemas. `$ref`s to `#/$defs/...` are followed one step."""
    props = document.get("properties")
    if not isinstance(props, Mapping):
        return {}
    return {name: _python_type(document, prop, depth=0) for name, prop in props.items()}


_SCALAR_TYPES: dict[str, Any] = {"integer": int, "number": float, "boolean": bool, "string": str}


def _python_type(document: Mapping[str, Any], prop: Any, *, depth: int) -> Any:
    if not isinstance(prop, Mapping) or depth > 4:
        return Any
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        return _python_type(document, target, depth=depth + 1)
    for union in ("anyOf", "oneOf"):
        options = prop.get(union)
        if isinstance(options, list):
            kinds = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return _python_type(document, kinds[0], depth=depth + 1) if len(kinds) == 1 else Any
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "array":
        item = _python_type(document, prop.get("items"), depth=depth + 1)
        return list[item]  # type: ignore[valid-type]
    return _SCALAR_TYPES.get(kind, Any) if isinstance(kind, str) else Any
