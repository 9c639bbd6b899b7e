"""The `testing` extra: what a user installs to test a motet app, and nothing heavy."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def extras() -> dict[str, list[str]]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements}


def test_the_testing_extra_is_pytest_and_pytest_trio_only() -> None:
    assert names(extras()["testing"]) == {"pytest", "pytest-trio"}


def test_the_development_extra_still_covers_the_testing_extra() -> None:
    assert names(extras()["testing"]) <= names(extras()["test"])


def test_motet_testing_needs_no_http_client_library() -> None:
    # Why httpx is not in the extra: the harness's client talks ASGI in-process.
    code = (
        "import sys, motet.testing, motet.testing._plugin;"
        "bad = sorted(m for m in ('httpx', 'playwright', 'hypothesis', 'coredis') "
        "if m in sys.modules); print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_readme_says_how_to_install_it() -> None:
    assert "pip install motet[testing]" in (ROOT / "README.md").read_text(encoding="utf-8")
