"""`motet new NAME`: the project it writes loads, its own test passes under pytest in a
fresh process, and it serves."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import httpx
import pytest

from ._project import DEADLINE, Motet, run_motet, wait_until


def test_new_project_passes_its_own_test_and_serves(tmp_path: Path) -> None:
    created = run_motet(tmp_path, "new", "shop")
    assert created.returncode == 0, created.stderr
    root = tmp_path / "shop"
    assert f"created {root}" in created.stdout and "motet dev" in created.stdout
    assert (root / "steps" / "greet_step.py").is_file()

    # The user's `python -m pytest` in the new folder: only its own test and config.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        text=True,
        capture_output=True,
        timeout=DEADLINE * 4,
        env=env,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    listed = run_motet(root, "steps")
    assert listed.returncode == 0 and "Greet" in listed.stdout

    app = Motet(root, "start", "--port", "0")
    try:
        line = wait_until(
            lambda: next((x for x in app.stdout if "runtime started" in x), None),
            f"the app to start; stderr {app.stderr}",
        )
        url = line.split('urls=["', 1)[1].split('"', 1)[0]
        r = httpx.post(f"{url}/greet", json={"name": "Ada"}, timeout=DEADLINE)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        wait_until(
            lambda: run_motet(root, "state", "get", "greetings", "Ada").returncode == 0,
            "the greeting to be stored",
        )
        app.signal(signal.SIGTERM)
        assert app.wait() == 0
    finally:
        app.close()


def printed_commands(stdout: str) -> list[str]:
    """The commands `motet new` prints, without their `# ...` comments."""
    lines = stdout.split("\n\n", 1)[1].splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.strip()]


def test_new_project_lists_its_dependencies_and_its_printed_commands_work(
    tmp_path: Path,
) -> None:
    created = run_motet(tmp_path, "new", "shop")
    assert created.returncode == 0, created.stderr
    root = tmp_path / "shop"
    commands = printed_commands(created.stdout)
    assert commands == ["cd shop", "pip install -e '.[test]'", "motet dev", "python -m pytest"]

    with (root / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    assert pyproject["project"]["name"] == "shop"
    assert pyproject["project"]["dependencies"] == ["motet"]
    assert pyproject["project"]["optional-dependencies"]["test"] == ["motet[testing]"]
    assert pyproject["tool"]["pytest"]["ini_options"]["trio_mode"] is True
    # An app, not a library: `pip install -e .` installs motet and packages no folder.
    assert pyproject["tool"]["setuptools"]["packages"] == []
    # setuptools (what pip builds it with) accepts the table as written.
    config = pytest.importorskip("setuptools.config.pyprojecttoml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # older setuptools calls [tool.setuptools] beta
        read = config.read_configuration(root / "pyproject.toml")
    assert read["project"]["dependencies"] == ["motet"]

    assert ".motet/" in (root / ".gitignore").read_text().splitlines()
    readme = [x for x in (root / "README.md").read_text().splitlines() if x.strip()]
    assert len(readme) == 3 and readme[0] == "# shop"
    assert all(f"`{c}`" in readme[2] for c in commands[1:])

    # The install line is not run: a fresh venv installing motet from an index is too slow
    # for CI here (and needs the network). Its dependencies are checked above; the test
    # command runs as printed, `python` being this interpreter (where motet and motet's
    # testing extra are installed), in the folder the printed `cd` enters.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    argv = shlex.split(commands[3])
    assert argv[0] == "python"
    tests = subprocess.run(
        [sys.executable, *argv[1:], "-p", "no:cacheprovider"],
        cwd=tmp_path / shlex.split(commands[0])[1],
        text=True,
        capture_output=True,
        timeout=DEADLINE * 4,
        env=env,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "keep.txt").write_text("mine")
    result = run_motet(tmp_path, "new", "shop")
    assert result.returncode == 2
    assert result.stderr.startswith("motet: error: ") and "not empty" in result.stderr
    assert (tmp_path / "shop" / "keep.txt").read_text() == "mine"
