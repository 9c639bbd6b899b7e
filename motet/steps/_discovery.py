"""Finding step files under a folder, importing them, and checking the set as a whole.

Step files are `*_step.py` (Motia's Python naming) and `*.step.py`. Each is imported as the
module a user would name (`steps.pets.create_pet_step`) when the steps folder is importable
from the project folder, else under a private name derived from the folder and the file's
relative path (`step_module_name`); either way it is in `sys.modules` while it runs
(dataclasses and cattrs resolve string annotations through it). The folder's parent is put
on `sys.path`, so steps can import the project's own modules, and tests can import the steps.
Other `.py` files are never imported; `stray_step_files` reads them to find the ones that look
like steps but are named otherwise (a typo in the name would skip the step silently).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import keyword
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

__all__ = [
    "discover_step_files",
    "discover_stream_files",
    "load_steps",
    "step_module_name",
    "stray_step_files",
]


def is_step_file_name(name: str) -> bool:
    return name.endswith("_step.py") or name.endswith(".step.py")


def is_stream_file_name(name: str) -> bool:
    return name.endswith(".stream.py") or name.endswith("_stream.py")


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


def discover_stream_files(root: Path) -> list[Path]:
    """Stream files (`*.stream.py`, `*_stream.py`) under `root`, found as step files are:
    looked for without importing `motet.streams`, which a project without streams never
    loads."""
    return [p for p in _python_files(Path(root)) if is_stream_file_name(p.name)]


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
    """The module name a step file is imported under.

    The name a user would write, `steps.pet_store.create_pet_step`, when the steps folder is
    importable as a package from the project folder: its name and every part of the file's
    path are identifiers, it does not shadow a standard-library module, and no other folder
    already holds that package name in this process. Tests can then `import
    steps.pet_store.create_pet_step` (or monkeypatch it) and reach the very module motet
    runs. Otherwise (a `x.step.py` file, a second project with a `steps/` folder loaded in
    the same process) `motet_steps_<hash of root>__<sanitised relative path>`: stable across
    reloads of one folder, distinct between folders."""
    root = Path(root).resolve()
    rel = Path(file).resolve().relative_to(root)
    parts = [*rel.parts[:-1], rel.name.removesuffix(".py")]
    if _importable_as_package(root, parts):
        dotted = ".".join([root.name, *parts])
        existing = sys.modules.get(dotted)
        if existing is None or _module_file(existing) == Path(file).resolve():
            return dotted
    return _private_name(root, parts)


def _module_file(module: ModuleType) -> Path:
    return Path(getattr(module, "__file__", "") or "").resolve()


def _private_name(root: Path, parts: list[str]) -> str:
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:10]
    clean = [re.sub(r"\W", "_", p) for p in parts]
    return f"motet_steps_{digest}__" + "__".join(clean)


def _importable_as_package(root: Path, parts: list[str]) -> bool:
    top = root.name
    if not all(p.isidentifier() and not keyword.iskeyword(p) for p in [top, *parts]):
        return False
    if top in sys.stdlib_module_names:
        return False
    # Every package on the way (`steps`, `steps.pets`) that is imported already must be
    # this project's folder: a name held by another folder stays its own.
    folder, name = root, top
    for part in [None, *parts[:-1]]:
        if part is not None:
            folder, name = folder / part, f"{name}.{part}"
        package = sys.modules.get(name)
        if package is not None and not _package_holds(package, folder):
            return False
    return True


def _package_holds(package: ModuleType, folder: Path) -> bool:
    """Is `package` the package of `folder`: a regular one whose `__init__.py` is there, or a
    namespace package whose path is that folder alone (listed once or more)?"""
    folder = folder.resolve()
    if getattr(package, "__file__", None):
        return _module_file(package).parent == folder
    paths = list(getattr(package, "__path__", None) or [])
    return {Path(p).resolve() for p in paths} == {folder}


def _file_stamp(file: Path) -> tuple[int, int]:
    stat = file.stat()
    return stat.st_mtime_ns, stat.st_size


def _import(root: Path, file: Path) -> ModuleType:
    name = step_module_name(root, file)
    if "." in name:
        module = _import_dotted(name, root, file)
        if module is not None:
            return module
        # The name turned out to be another file's: a private one, as for any other clash.
        name = _private_name(root.resolve(), name.split(".")[1:])
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        raise StepDefinitionError("cannot be imported as a Python module", file=file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if not isinstance(exc, Exception):
            raise
        raise _import_failure(exc, file) from exc
    return module


def _import_dotted(name: str, root: Path, file: Path) -> ModuleType | None:
    """Import `file` as `name` (`steps.x_step`) through Python's own import system, so its
    parent packages are imported and bound as usual. A module already imported from the same,
    unchanged file is reused, as `import` would: a test that imported it first, and
    monkeypatched it, acts on the module motet runs. None when the name is another file's
    (another project's, or the top package resolves to another folder): the caller falls
    back to a private name."""
    existing = sys.modules.get(name)
    stamp = _file_stamp(file)
    if existing is not None:
        if _module_file(existing) != file.resolve():
            return None  # another project's module holds the name: never evict it
        if getattr(existing, "__motet_stamp__", stamp) == stamp:
            existing.__motet_stamp__ = stamp  # type: ignore[attr-defined]
            return existing
        sys.modules.pop(name, None)  # the file changed since: import it again
    if not _packages_on_the_way(name, root):
        return None
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if not isinstance(exc, Exception):
            raise
        raise _import_failure(exc, file) from exc
    if _module_file(module) != file.resolve():
        return None  # found elsewhere on sys.path: not this project's file
    module.__motet_stamp__ = stamp  # type: ignore[attr-defined]
    return module


def _packages_on_the_way(name: str, root: Path) -> bool:
    """Import the packages `name` sits in (`steps`, `steps.pets`) and check that each is this
    project's folder: found first on sys.path, not another folder's package of that name.
    False (a private name, then) when one is elsewhere or fails to import: the step files
    load without their packages, and `import steps` shows that error where it belongs."""
    folder = root
    *packages, _ = name.split(".")
    for depth, part in enumerate(packages):
        if depth:
            folder = folder / part
        try:
            package = importlib.import_module(".".join(packages[: depth + 1]))
        except Exception:
            return False
        if not _package_holds(package, folder):
            return False
    return True


def _import_failure(exc: Exception, file: Path) -> StepDefinitionError:
    """The StepDefinitionError for a step file that failed to import."""
    if isinstance(exc, StepDefinitionError):  # raised by http()/queue()/... at import time
        return StepDefinitionError(exc.reason, file=file, step=exc.step, field=exc.field)
    line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
    return StepDefinitionError(
        f"could not import the step file{line}: {type(exc).__name__}: {exc}", file=file
    )


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
