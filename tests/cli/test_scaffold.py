"""`motet new NAME`: the project it writes loads, its own test passes under pytest in a
fresh process, and it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

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


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "keep.txt").write_text("mine")
    result = run_motet(tmp_path, "new", "shop")
    assert result.returncode == 2
    assert result.stderr.startswith("motet: error: ") and "not empty" in result.stderr
    assert (tmp_path / "shop" / "keep.txt").read_text() == "mine"
