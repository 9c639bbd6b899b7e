"""Finding step files under a folder, importing them, and checking the set as a whole.

Step files are `*_step.py` (Motia's Python naming) and `*.step.py`. Each is imported under a
module name derived from the steps folder and the file's relative path, registered in
`sys.modules` while it runs (dataclasses and cattrs resolve string annotations through it).
The folder's parent is put on `sys.path`, so steps can import the project's own modules.
Other `.py` files are never imported; `stray_step_files` reads them to find the ones that look
like steps but are named otherwise (a typo in the name would skip the step silently).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .._errors import StepDefinitionError
from ._loader import load_step
from ._model import HttpTrigger, Step, StepDefinition

__all__ = ["discover_step_files", "load_steps", "step_module_name", "stray_step_files"]


def is_step_file_name(name: str) -> bool:
    return name.endswith("_step.py") or name.endswith(".step.py")


def _python_files(root: Path) -> list[Path]:
    """`.py` files under `root`, recursively, sorted; skips `__pycache__` and hidden names.

    Symlinked folders are not followed (a link cycle would never end)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        found += [Path(folder, n) for n in files if n.endswith(".py") and not n.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(root).parts)


def discover_step_files(root: Path) -> list[Path]:
    """Step files under `root`, recursively, sorted; skips `__pycache__` and hidden folders."""
    return [p for p in _python_files(Path(root)) if is_step_file_name(p.name)]


def stray_step_files(root: Path) -> list[Path]:
    """`.py` files under `root` that bind both `config` and `handler` at top level but are not
    named as step files, so they are not loaded. Read with `ast`, never imported: any other
    module of the project may live beside the steps."""
    stray = []
    for path in _python_files(Path(root)):
        if is_step_file_name(path.name):
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):  # not ours to judge: it is not loaded
            continue
        if {"config", "handler"} <= _top_level_names(tree):
            stray.append(path)
    return stray


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def step_module_name(root: Path, file: Path) -> str:
    """`motet_steps_<hash of root>__<sanitised relative path>`: stable across reloads of one
    folder, distinct between folders (two projects may both have `steps/pets_step.py`)."""
    root = Path(root).resolve()
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    rel = Path(file).resolve().relative_to(root)
    parts = [*rel.parts[:-1], rel.name.removesuffix(".py")]
    clean = [re.sub(r"\W", "_", p) for p in parts]
    return f"motet_steps_{digest}__" + "__".join(clean)


def _import(root: Path, file: Path) -> ModuleType:
    name = step_module_name(root, file)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise StepDefinitionError("cannot be imported as a Python module", file=file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except StepDefinitionError as exc:  # raised by http()/queue()/... at import time
        sys.modules.pop(name, None)
        raise StepDefinitionError(exc.reason, file=file, step=exc.step, field=exc.field) from exc
    except Exception as exc:  # SyntaxError, ImportError, anything the module body raised
        sys.modules.pop(name, None)
        line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise StepDefinitionError(
            f"could not import the step file{line}: {type(exc).__name__}: {exc}", file=file
        ) from exc
    return module


def _exports(module: ModuleType, file: Path) -> tuple[Any, Any]:
    """(config, handler) of a module: a `step(...)` definition under any name, or the
    `config` and `handler` globals."""
    definitions = list(
        {id(v): v for v in vars(module).values() if isinstance(v, StepDefinition)}.values()
    )
    if len(definitions) > 1:
        names = sorted(k for k, v in vars(module).items() if isinstance(v, StepDefinition))
        raise StepDefinitionError(
            f"exports {len(definitions)} step(...) definitions ({', '.join(names)}); "
            "a step file holds one step",
            file=file,
        )
    if definitions:
        return definitions[0].config, definitions[0].handler
    if not hasattr(module, "config"):
        raise StepDefinitionError(
            "exports neither `config` (with `handler`) nor a step(...) definition", file=file
        )
    return module.config, getattr(module, "handler", None)


def load_steps(root: Path) -> list[Step]:
    """Import every step file under `root` and return their steps, in file order.

    Raises StepDefinitionError naming the file (and step and field) for the first problem:
    a file that does not import, a bad config, two steps with one name, two steps serving
    the same method and path.
    """
    root = Path(root)
    if not root.is_dir():
        raise StepDefinitionError(f"the steps folder does not exist ({root.resolve()})", file=root)
    project_dir = str(root.resolve().parent)
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    steps = []
    for file in discover_step_files(root):
        config, handler = _exports(_import(root, file), file)
        steps.append(load_step(config, handler, file=file))
    check_step_set(steps)
    return steps


def check_step_set(steps: Iterable[Step]) -> None:
    """Names are unique, and no two HTTP triggers share a method and path."""
    names: dict[str, Step] = {}
    routes: dict[tuple[str, str], Step] = {}
    for step in steps:
        if step.name in names:
            other = names[step.name]
            raise StepDefinitionError(
                f"duplicate step name {step.name!r}: also defined in {_where(other)}",
                file=step.file,
                step=step.name,
                field="name",
            )
        names[step.name] = step
        for trigger in step.of_type(HttpTrigger):
            key = (trigger.method, _route_shape(trigger))
            if key in routes and routes[key] is not step:
                other = routes[key]
                raise StepDefinitionError(
                    f"{trigger.method} {trigger.path} is also served by step "
                    f"{other.name!r} ({_where(other)})",
                    file=step.file,
                    step=step.name,
                    field="path",
                )
            routes[key] = step


def _where(step: Step) -> str:
    return str(step.file) if step.file is not None else "code (no file)"


def _route_shape(trigger: HttpTrigger) -> str:
    """`/pets/:id` and `/pets/{pet}` match the same requests; so, here, do `/pets/` and `/pets`
    (a load-time rule stricter than the gateway's, which serves them as two paths)."""
    return trigger.route.shape.rstrip("/") or "/"
