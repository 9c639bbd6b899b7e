"""Shared by every test: one process loads many projects, each with a `steps/` folder.

Step files are imported as `steps.<path>` when they can be (a user's tests then reach the
module motet runs), so a project a test wrote in a temporary folder would keep the name
`steps` for the rest of the session, and the next project whose step files `import
steps.…` would find the wrong package. After each test, any `steps` module that is not this
repository's example app is forgotten, as a new process would never have seen it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE_STEPS = Path(__file__).resolve().parent.parent / "steps"


def _is_example(module: object) -> bool:
    paths = [getattr(module, "__file__", None), *(getattr(module, "__path__", None) or [])]
    return any(p and Path(p).resolve().is_relative_to(EXAMPLE_STEPS) for p in paths)


@pytest.fixture(autouse=True)
def _forget_other_projects_steps() -> Iterator[None]:
    yield
    for name, module in list(sys.modules.items()):
        if (name == "steps" or name.startswith("steps.")) and not _is_example(module):
            del sys.modules[name]
