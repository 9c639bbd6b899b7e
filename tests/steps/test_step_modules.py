"""Step files are imported as the modules a user would name, so a test can import a step
module, or monkeypatch it, and act on the very module motet runs."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from motet.steps import load_steps, step_module_name
from motet.testing import open_test_runtime

from .conftest import WriteFiles


@pytest.fixture(autouse=True)
def _no_steps_package(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This repository's own example `steps` package may be imported already in this test
    process, and its folder is on sys.path (a regular package there would win over a
    project's `steps/` folder without `__init__.py`); set both aside, then put them back."""
    monkeypatch.setattr(
        sys,
        "path",
        [p for p in sys.path if not (Path(p or ".") / "steps" / "__init__.py").exists()],
    )
    saved = {n: m for n, m in sys.modules.items() if n == "steps" or n.startswith("steps.")}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [n for n in sys.modules if n == "steps" or n.startswith("steps.")]:
        del sys.modules[name]
    sys.modules.update(saved)


PING = """
CALLS = []

def fetch_price(item):
    raise RuntimeError("the real price service is not reachable from tests")

config = {"name": "Ping", "triggers": [{"type": "queue", "topic": "ping"}]}

async def handler(input, ctx):
    CALLS.append(fetch_price(input["item"]))
"""


def test_a_step_file_is_imported_under_its_package_name(project: WriteFiles) -> None:
    steps = project({"steps/shop/ping_step.py": PING})
    (step,) = load_steps(steps)
    assert step_module_name(steps, steps / "shop" / "ping_step.py") == "steps.shop.ping_step"
    module = importlib.import_module("steps.shop.ping_step")
    assert step.handler.__module__ == "steps.shop.ping_step"
    assert step.handler.__globals__ is vars(module)
    import steps.shop.ping_step as again  # type: ignore[import-not-found]

    assert again is module


def test_a_module_the_test_imported_first_is_the_one_motet_runs(project: WriteFiles) -> None:
    steps = project({"steps/ping_step.py": PING})
    sys.path.insert(0, str(steps.parent))
    module = importlib.import_module("steps.ping_step")
    (step,) = load_steps(steps)
    assert step.handler.__globals__ is vars(module)


async def test_monkeypatching_a_step_module_fakes_its_external_call(
    project: WriteFiles, monkeypatch: pytest.MonkeyPatch, autojump_clock: object
) -> None:
    steps = project({"steps/ping_step.py": PING})
    async with open_test_runtime(steps) as app:
        module = importlib.import_module("steps.ping_step")
        monkeypatch.setattr(module, "fetch_price", lambda item: f"{item}: 3.50")
        await app.emit("ping", {"item": "tea"})
        await app.settle(fail_fast=True)
        assert module.CALLS == ["tea: 3.50"]
        assert await app.dead_letters() == []


def test_an_edited_file_is_imported_again(project: WriteFiles) -> None:
    steps = project({"steps/ping_step.py": PING})
    (first,) = load_steps(steps)
    (same,) = load_steps(steps)
    assert same.handler is first.handler  # unchanged file: the module is reused, as import does
    (steps / "ping_step.py").write_text(PING.replace('"Ping"', '"Pong"') + "\n# edited\n")
    (edited,) = load_steps(steps)
    assert edited.name == "Pong"
    assert sys.modules["steps.ping_step"].config["name"] == "Pong"


def test_a_second_project_with_a_steps_folder_gets_a_private_name(tmp_path: Path) -> None:
    for name in ("one", "two"):
        folder = tmp_path / name / "steps"
        folder.mkdir(parents=True)
        (folder / "ping_step.py").write_text(PING)
    load_steps(tmp_path / "one" / "steps")
    (two,) = load_steps(tmp_path / "two" / "steps")
    assert two.handler.__module__.startswith("motet_steps_")
    assert sys.modules["steps.ping_step"].__file__ == str(
        tmp_path / "one" / "steps" / "ping_step.py"
    )


def test_a_regular_steps_package_elsewhere_on_the_path_is_not_taken_for_the_project(
    project: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    (other / "steps").mkdir(parents=True)
    (other / "steps" / "__init__.py").write_text("")
    (other / "steps" / "ping_step.py").write_text("raise RuntimeError('not this one')\n")
    monkeypatch.syspath_prepend(str(other))
    steps = project({"steps/ping_step.py": PING})  # no __init__.py: the other one would win
    (step,) = load_steps(steps)
    assert step.handler.__module__.startswith("motet_steps_")


@pytest.mark.parametrize(
    ("folder", "file"),
    [
        ("steps", "api/x.step.py"),  # a dot in the file name
        ("steps", "my-api/x_step.py"),  # not an identifier
        ("json", "x_step.py"),  # would shadow the standard library
        ("class", "x_step.py"),  # a keyword
    ],
)
def test_names_python_cannot_import_get_a_private_name(
    tmp_path: Path, folder: str, file: str
) -> None:
    root = tmp_path / folder
    assert step_module_name(root, root / file).startswith("motet_steps_")


def test_a_failing_import_leaves_no_module_behind(project: WriteFiles) -> None:
    steps = project({"steps/bad_step.py": "raise RuntimeError('db not reachable')\n"})
    with pytest.raises(Exception, match="db not reachable"):
        load_steps(steps)
    assert "steps.bad_step" not in sys.modules
