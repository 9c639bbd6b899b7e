from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WriteFiles = Callable[..., Path]


@pytest.fixture(autouse=True)
def _isolated_imports(tmp_path: Path) -> Iterator[None]:
    """Step loading adds the project folder to sys.path and step/helper modules to
    sys.modules; undo both so tests cannot see each other's files."""
    path_before = list(sys.path)
    yield
    sys.path[:] = path_before
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        paths = list(getattr(module, "__path__", None) or [])
        mine = file.startswith(str(tmp_path)) or any(
            str(p).startswith(str(tmp_path)) for p in paths
        )
        if name.startswith("motet_steps_") or mine:
            del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path) -> WriteFiles:
    """`project({"steps/a_step.py": "...source..."})` writes the files (dedented) under
    tmp_path and returns the steps folder."""

    def write(files: dict[str, str]) -> Path:
        for rel, source in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).lstrip())
        steps = tmp_path / "steps"
        steps.mkdir(exist_ok=True)
        return steps

    return write
