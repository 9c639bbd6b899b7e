"""Every public name is importable from its public path (ruff keeps `__all__` sorted)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import subprocess
import sys

import pytest

PACKAGES = [
    "motet",
    "motet.actors",
    "motet.backends",
    "motet.console",
    "motet.gateway",
    "motet.observe",
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
    code = "import sys, motet; print('motet.testing' in sys.modules, 'pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_optional_backends_are_not_imported_eagerly() -> None:
    code = "import sys, motet; print('coredis' in sys.modules, 'sqlite3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "False"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_report_their_public_module(name: str) -> None:
    module = importlib.import_module(name)
    for public in module.__all__:
        obj = getattr(module, public)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not obj.__module__.startswith("motet"):
            continue  # a re-export of another library's name
        where = obj.__module__
        assert not any(part.startswith("_") for part in where.split(".")), f"{name}.{public}"
        assert getattr(importlib.import_module(where), public) is obj, f"{where}.{public}"


def test_a_public_name_reports_the_outermost_package_exporting_it() -> None:
    import motet
    import motet.steps

    assert motet.Step.__module__ == "motet"  # exported by motet and by motet.steps
    assert repr(motet.Step).startswith("<class 'motet.Step'")
    assert motet.steps.load_steps.__module__ == "motet.steps"
    assert pickle.loads(pickle.dumps(motet.QueueOptions())) == motet.QueueOptions()


def test_the_backends_are_exported_lazily() -> None:
    code = (
        "import sys, motet.backends as b\n"
        "print(*('motet.backends.' + m in sys.modules for m in ('_memory', '_sqlite', '_redis')))\n"
        "print(b.SqliteBackend.__module__, b.RedisBackend.__module__, b.RedisOptions.__module__)\n"
        "print(b.MemoryBackend.__module__)\n"
        "from motet.backends import MemoryBackend, SqliteBackend\n"
        "print(SqliteBackend is b.SqliteBackend, MemoryBackend is b.MemoryBackend)\n"
        "print('coredis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "False False False",
        "motet.backends motet.backends motet.backends",
        "motet.backends",
        "True True",
        "False",
    ]


def test_a_missing_backend_name_is_an_attribute_error() -> None:
    import motet.backends

    with pytest.raises(AttributeError, match="has no attribute 'PostgresBackend'"):
        motet.backends.PostgresBackend  # noqa: B018
