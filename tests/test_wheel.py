"""The package as a user gets it: a wheel and an sdist built from the sources (the wheel from
the sdist, as `python -m build` does, so a file missing from the sdist fails here too), the
wheel installed with its dependencies into a fresh venv, and the example app run from it. A
packaging mistake (console assets, `py.typed`, the license, a dependency not declared) fails
CI instead of a user."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx

from .cli._project import Motet

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 300  # s: building and installing fetch setuptools and the dependencies


def run(*argv: str | Path, cwd: Path | None = None) -> None:
    result = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=DEADLINE
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"


def build(tmp_path: Path) -> tuple[Path, Path]:
    """Wheel and sdist of a copy of the sources (the build writes egg-info beside them)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "motet", source / "motet", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, source)
    (wheel,) = dist.glob("motet-*.whl")
    (sdist,) = dist.glob("motet-*.tar.gz")
    return wheel, sdist


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_example_app(tmp_path: Path) -> None:
    wheel, sdist = build(tmp_path)
    packaged = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "motet/py.typed",
        "motet/console/static/index.html",
        "motet/console/static/console.js",
        "motet/console/static/console.css",
    ):
        assert name in packaged, f"{name} is missing from the wheel"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in packaged)
    assert not any(n.startswith(("tests/", "steps/")) for n in packaged)
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/LICENSE") for n in archive.getnames())

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    app = tmp_path / "app"
    shutil.copytree(ROOT / "steps", app / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "motet.toml", app / "motet.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTET_", "PYTHON"))}
    motet = Motet(
        app,
        "start",
        "--port",
        "0",
        "--log-format",
        "json",
        env={**env, "MOTET_PORT": "0"},
        command=(str(venv / "bin" / "motet"),),
    )
    try:
        url = motet.started()
        health = httpx.get(f"{url}/_motet/health", timeout=30)
        console = httpx.get(f"{url}/_console/console.js", timeout=30)
        created = httpx.post(
            f"{url}/pets", json={"name": "Rex", "breed": "Poodle", "age": 3}, timeout=30
        )
        motet.signal(signal.SIGTERM)
        assert motet.wait() == 0
    finally:
        motet.close()
    assert health.status_code == 200
    assert console.status_code == 200 and "views.state" in console.text
    assert created.status_code == 200 and created.json()["name"] == "Rex"
    imported_from = subprocess.run(
        [venv / "bin" / "python", "-c", "import motet; print(motet.__file__)"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert imported_from.startswith(str(venv))  # the wheel's copy, not this checkout
