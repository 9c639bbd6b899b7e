"""`motet dev`: the app runs in a child process that is restarted when code changes, so a
helper module a step imports is reloaded too, and state is kept in the sqlite file."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx

from ._project import DEADLINE, Motet, wait_until, write_project

HELPER = 'GREETING = "{}"\n'
GREET_STEP = """\
from motet import http

from steps.words import GREETING

config = {"name": "Greet", "triggers": [http("POST", "/greet/:name")]}


async def handler(request, ctx):
    name = request.path_params["name"]
    count = (await ctx.state.get("counts", name) or 0) + 1
    await ctx.state.set("counts", name, count)
    return {"status": 200, "body": {"text": f"{GREETING}, {name}", "count": count}}
"""


def _greet(url: str, name: str) -> tuple[int, object]:
    response = httpx.post(f"{url}/greet/{name}", timeout=DEADLINE)
    return response.status_code, response.json()


def test_dev_restarts_on_change_keeps_state_and_survives_a_broken_step(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={
            "steps/__init__.py": "",
            "steps/words.py": HELPER.format("Hello"),
            "steps/greet_step.py": GREET_STEP,
        },
    )
    dev = Motet(root, "dev", "--port", "0", "--log-format", "json")
    try:
        url = dev.started(1)
        assert _greet(url, "ada") == (200, {"text": "Hello, ada", "count": 1})

        # A helper module (not a step file) changes: the new child imports it afresh.
        (root / "steps" / "words.py").write_text(HELPER.format("Bonjour"))
        url = dev.started(2)
        dev.wait_stderr("motet: steps/words.py changed, restarting")
        assert _greet(url, "ada") == (200, {"text": "Bonjour, ada", "count": 2})

        # A broken step: the child reports it in one line and dev waits for the fix.
        (root / "steps" / "broken_step.py").write_text("config = {'name': 'B'}\n")
        dev.wait_stderr("the app exited with status 2")
        assert any(
            "broken_step.py" in line and line.startswith("motet: error: ") for line in dev.stderr
        )
        assert not any("Traceback" in line for line in dev.stderr)
        (root / "steps" / "broken_step.py").unlink()
        url = dev.started(3)
        assert _greet(url, "ada") == (200, {"text": "Bonjour, ada", "count": 3})

        dev.signal(signal.SIGINT)
        assert dev.wait() == 0
    finally:
        dev.close()
    assert sum(r.get("msg") == "motet runtime stopped" for r in dev.records()) == 3


def test_dev_while_waiting_for_a_fix_stops_on_a_signal(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={"steps/__init__.py": "", "steps/bad_step.py": "raise ImportError('nope')\n"},
    )
    dev = Motet(root, "dev", "--port", "0")
    try:
        dev.wait_stderr("the app exited with status 2")
        dev.signal(signal.SIGTERM)
        assert dev.wait() == 0
    finally:
        dev.close()


def test_dev_passes_its_flags_to_the_app(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={
            "steps/__init__.py": "",
            "steps/words.py": HELPER.format("Hi"),
            "steps/greet_step.py": GREET_STEP,
        },
    )
    dev = Motet(
        root,
        "dev",
        "--port",
        "0",
        "--backend",
        "memory",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    )
    try:
        url = dev.started()
        assert _greet(url, "bo") == (200, {"text": "Hi, bo", "count": 1})
        dev.signal(signal.SIGTERM)
        assert dev.wait() == 0
    finally:
        dev.close()
    started = next(r for r in dev.records() if r.get("msg") == "motet runtime started")
    assert started["backend"] == "memory" and started["level"] == "info"
    assert not (root / ".motet").exists()


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/greet/x", timeout=1.0)
    except httpx.TransportError:
        return True
    return False


def test_the_app_stops_when_dev_itself_is_killed(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={
            "steps/__init__.py": "",
            "steps/words.py": HELPER.format("Hi"),
            "steps/greet_step.py": GREET_STEP,
        },
    )
    dev = Motet(root, "dev", "--port", "0", "--log-format", "json")
    try:
        url = dev.started()
        assert _greet(url, "cy")[0] == 200
        dev.signal(signal.SIGKILL)  # no chance to forward anything
        assert dev.wait() == -signal.SIGKILL
        # The child had the read end of a pipe from dev: EOF, so it stops by itself.
        wait_until(lambda: _refused(url), "the orphaned app to stop serving")
    finally:
        dev.close()


def test_dev_fails_at_once_when_its_port_is_taken(tmp_path: Path) -> None:
    # The child would fail to bind on every start and dev would wait for a change that
    # cannot fix it; now dev itself refuses, as motet start does, naming the address.
    root = write_project(tmp_path / "app", files={"steps/greet_step.py": GREET_STEP})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = Motet(root, "dev", "--port", str(port))
        try:
            status = dev.wait()
        finally:
            dev.close()
    assert status == 1
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in dev.stderr), dev.stderr
    assert not any("Traceback" in line for line in dev.stderr)
