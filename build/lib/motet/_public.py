"""Public names report their public module (as trio's `fixup_module_metadata` does).

Classes and functions live in `_underscored` modules and are re-exported by the packages'
`__init__.py`; `publish(__name__, globals())` at the end of one sets their `__module__` to
that package, so reprs, tracebacks, `help()` and pickles name `motet.Step`, not
`motet.steps._model.Step`. A name exported by two packages reports the outer one (`motet`
re-exports from `motet.steps`, and its `__init__` runs last).

An attrs class's string annotations are resolved first: `typing.get_type_hints` looks a
class's names up in the module `__module__` names, which is the defining module's job.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from typing import Any

import attrs


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def publish_one(package: str, obj: Any) -> None:
    """Report `package` as `obj`'s module if it is motet's and now names a private or a
    deeper module."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return
    current = getattr(obj, "__module__", None) or ""
    if current != "motet" and not current.startswith("motet."):
        return
    if not (_private(current) or current.startswith(package + ".")):
        return
    if inspect.isclass(obj) and attrs.has(obj):
        with contextlib.suppress(NameError):
            # A hint naming what only the type checker imports (`if TYPE_CHECKING:`) did
            # not resolve under the defining module either: nothing is lost by leaving it.
            attrs.resolve_types(obj)
    obj.__module__ = package


def publish(package: str, namespace: Mapping[str, Any]) -> None:
    """Set the public module of every class and function in `namespace["__all__"]` that is
    already loaded (a lazily exported one is published when it is first read)."""
    for name in namespace["__all__"]:
        if name in namespace:
            publish_one(package, namespace[name])
