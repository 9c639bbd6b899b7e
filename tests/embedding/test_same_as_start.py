"""`open_runtime` and `motet start` run one project folder the same way: the settings of
its motet.toml and the MOTET_* environment, assembled in one place."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

import motet
from motet._runtime import Runtime, running
from motet.cli._app import Project
from motet.cli._start import build_runtime, configured

STEP = """\
from motet import http, queue

config = {
    "name": "Take",
    "triggers": [http("POST", "/jobs"), queue("job.retry")],
    "enqueues": ["job.done"],
}


async def handler(request, ctx):
    return {"status": 200, "body": {"ok": True}}
"""

TOML = """\
backend = "memory"
timezone = "Europe/Paris"
max_json_depth = 3

[queues."job.retry"]
max_retries = 7
concurrency = 3
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_folder(root: Path) -> Path:
    (root / "steps").mkdir(parents=True)
    (root / "steps" / "take_step.py").write_text(STEP)
    (root / "motet.toml").write_text(textwrap.dedent(TOML))
    return root


async def seen(runtime: Runtime) -> dict[str, Any]:
    """What a project folder decides about a running runtime, and how its gateway answers a
    body deeper than the project allows."""
    async with httpx.AsyncClient(base_url=runtime.gateway_urls[0]) as client:
        deep = await client.post("/jobs", json={"a": {"b": {"c": {"d": 1}}}})
        shallow = await client.post("/jobs", json={"a": 1})
    return {
        "subscriptions": runtime.subscriptions,
        "backend": runtime.backend.name,
        "config": attrs.evolve(runtime.project, root=Path("."), file=None),  # cwd-relative or not
        "urls": runtime.gateway_urls,
        "answers": (deep.status_code, shallow.status_code),
    }


async def test_open_runtime_runs_a_folder_as_motet_start_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project_folder(tmp_path / "app")
    port = free_port()
    monkeypatch.setenv("MOTET_PORT", str(port))
    monkeypatch.setenv("MOTET_LOG_LEVEL", "warn")
    monkeypatch.chdir(root)

    async with motet.open_runtime(serve=True) as embedded:
        by_open_runtime = await seen(embedded)

    project = Project(root)
    config, steps, gateway = configured(project, {"port": None, "backend": None})
    async with running(build_runtime(project, config, steps, gateway)) as started:
        by_start = await seen(started)

    assert by_open_runtime == by_start
    (sub,) = by_start["subscriptions"]
    assert (sub.topic, sub.options.max_retries, sub.options.concurrency) == ("job.retry", 7, 3)
    assert by_start["backend"] == "memory"
    assert by_start["urls"] == [f"http://127.0.0.1:{port}"]
    assert by_start["config"].log_level == "warn" and by_start["config"].timezone == "Europe/Paris"
    assert by_start["answers"] == (400, 200)  # max_json_depth = 3 from motet.toml
    assert not (root / ".motet").exists()


async def test_open_runtime_reads_the_project_file_it_used_to_ignore(tmp_path: Path) -> None:
    root = project_folder(tmp_path)
    async with motet.open_runtime(root=root) as runtime:
        (sub,) = runtime.subscriptions
        assert sub.options.max_retries == 7
        assert runtime.project.timezone == "Europe/Paris"


async def test_open_runtime_without_a_backend_setting_is_in_memory(tmp_path: Path) -> None:
    root = project_folder(tmp_path)
    (root / "motet.toml").write_text("")
    async with motet.open_runtime(root=root) as runtime:
        assert runtime.backend.name == "memory"
    assert not (root / ".motet").exists()


async def test_a_keyword_argument_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project_folder(tmp_path)
    monkeypatch.setenv("MOTET_BACKEND", "sqlite")
    async with motet.open_runtime(root=root, backend="memory") as runtime:
        assert runtime.backend.name == "memory"
    assert not (root / ".motet").exists()
    with trio.fail_after(30):
        async with motet.open_runtime(root=root) as runtime:
            assert runtime.backend.name == "sqlite"
    assert (root / ".motet").exists()
