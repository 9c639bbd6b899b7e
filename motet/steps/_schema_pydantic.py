"""pydantic model classes as step schemas, when pydantic is installed (`motet[pydantic]`).

motet never imports pydantic itself: a class can only be a pydantic model if the step file
imported pydantic, so every check here looks in `sys.modules` first and `import motet` stays
free of it. The model validates (`model_validate`, pydantic's own rules and messages) and the
handler gets the instance; each error's `loc` becomes the same `@ $.body.tags[0].name` path
cattrs gives for class schemas. Going out (an emit, a state value, a response body) a model
is `model_dump(mode="json")`, and its JSON Schema is `model_json_schema()`.
"""

from __future__ import annotations

import sys
from typing import Any

from .._errors import InputValidationError
from ._schema_dict import json_path

__all__ = ["dump_model", "is_model_class", "is_model_instance", "model_schema", "validate_model"]


def _base_model() -> type | None:
    pydantic = sys.modules.get("pydantic")
    return getattr(pydantic, "BaseModel", None) if pydantic is not None else None


def is_model_class(tp: Any) -> bool:
    """A pydantic (v2) model class."""
    base = _base_model()
    return base is not None and isinstance(tp, type) and issubclass(tp, base)


def is_model_instance(value: Any) -> bool:
    base = _base_model()
    return base is not None and isinstance(value, base)


def validate_model(model: Any, payload: Any, *, root: str = "$", what: str = "input") -> Any:
    """The model instance for `payload`, or InputValidationError with one
    `<message> @ <path>` per pydantic error."""
    import pydantic

    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        messages = [_message(error, root) for error in exc.errors(include_url=False)]
        raise InputValidationError(messages, what=what) from exc
    except Exception as exc:  # a validator raising what pydantic does not wrap (a TypeError)
        raise InputValidationError([f"{type(exc).__name__}: {exc} @ {root}"], what=what) from exc


def _message(error: Any, root: str) -> str:
    text = "required field missing" if error.get("type") == "missing" else error.get("msg", "")
    return f"{text} @ {json_path(root, error.get('loc', ()))}"


def dump_model(value: Any) -> Any:
    """A model instance as plain JSON data."""
    return value.model_dump(mode="json")


def model_schema(model: Any, *, mode: str = "validation") -> dict[str, Any]:
    """The model's JSON Schema (2020-12, classes under `$defs`): of what it accepts, or with
    `mode="serialization"` of what it dumps."""
    schema: dict[str, Any] = model.model_json_schema(mode=mode)
    return schema
