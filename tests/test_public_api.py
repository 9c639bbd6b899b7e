"""Every public name is importable from its public path (ruff keeps `__all__` sorted)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "motet",
    "motet.actors",
    "motet.backends",
    "motet.console",
    "motet.gateway",
    "motet.project",
    "motet.state",
    "motet.steps",
    "motet.supervision",
    "motet.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    for public in exported:
        assert getattr(module, public) is not None, f"{name}.{public}"


def test_import_motet_does_not_import_the_testing_tools() -> None:
    import subprocess
    import sys

    code = "import sys, motet; print('motet.testing' in sys.modules, 'pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_optional_backends_are_not_imported_eagerly() -> None:
    import subprocess
    import sys

    code = "import sys, motet; print('coredis' in sys.modules, 'sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"
