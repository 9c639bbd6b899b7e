"""`motet start` as a user runs it: flags, the project's config file, and the errors a user
meets (a broken step, a broken config, a port in use, a database that cannot be opened)."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import httpx

from ._project import (
    BASIC_STEPS,
    DEADLINE,
    Motet,
    get_json,
    run_motet,
    wait_until,
    write_project,
)


def _stop(app: Motet) -> None:
    app.signal(signal.SIGTERM)
    assert app.wait() == 0


def test_start_serves_the_project_and_its_queues_on_the_flags_port(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    app = Motet(
        root,
        "start",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--backend",
        "memory",
        "--log-level",
        "info",
    )
    try:
        url = app.started()
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(f"{url}/orders", json={"id": "o1", "qty": 2}, timeout=DEADLINE)
        assert r.status_code == 201 and r.headers["x-trace-id"]
        wait_until(
            lambda: get_json(f"{url}/orders/o1") == (200, {"qty": 2, "done": True}),
            "the queue step to ship o1",
        )
        bad = httpx.post(f"{url}/orders", json={"id": "o2", "qty": "two"}, timeout=DEADLINE)
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        started = next(r for r in app.records() if r.get("msg") == "motet runtime started")
        assert started["backend"] == "memory"
        _stop(app)
    finally:
        app.close()
    assert not (root / ".motet").exists()  # --backend memory wins over motet.toml's sqlite


def test_start_reads_tool_motet_in_pyproject_and_flags_override_it(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        toml=None,
        files={f"src/{k.removeprefix('steps/')}": v for k, v in BASIC_STEPS.items()},
    )
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.motet]\nsteps = "src"\nbackend = "sqlite"\n'
        'log_format = "json"\nport = 1\n',
        encoding="utf-8",
    )
    app = Motet(root, "start", "--port", "0")
    try:
        url = app.started()
        assert get_json(f"{url}/orders/none")[0] == 404
        _stop(app)
    finally:
        app.close()
    assert (root / ".motet" / "motet.db").is_file()


def test_pretty_logs_and_a_steps_folder_flag(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        toml=None,
        files={f"jobs/{k.removeprefix('steps/')}": v for k, v in BASIC_STEPS.items()},
    )
    app = Motet(
        root,
        "start",
        "--port",
        "0",
        "--steps",
        "jobs",
        "--backend",
        "memory",
        "--log-format",
        "pretty",
    )
    try:
        line = wait_until(
            lambda: next((x for x in app.stdout if "runtime started" in x), None), "the start line"
        )
        assert "INFO" in line and not line.startswith("{")
        url = json.loads(line.split("urls=", 1)[1])[0]
        assert get_json(f"{url}/orders/none")[0] == 404
        _stop(app)
    finally:
        app.close()


def test_a_port_in_use_is_one_clear_line_and_status_1(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_motet(root, "start", "--port", str(port), "--backend", "memory")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("motet: error: ") and f"127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0]


def test_a_broken_step_is_one_line_naming_file_and_field_with_status_2(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={
            **BASIC_STEPS,
            "steps/bad_step.py": 'config = {"name": "Bad", "type": "api", "method": "POST", '
            '"path": "pets"}\n\nasync def handler(req, ctx):\n    return {}\n',
        },
    )
    result = run_motet(root, "start", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "bad_step.py" in result.stderr and "field 'path'" in result.stderr
    debug = run_motet(root, "--debug", "start", "--port", "0")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_step_that_raises_on_import_is_one_line(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        files={**BASIC_STEPS, "steps/boom_step.py": "raise RuntimeError('no config for you')\n"},
    )
    result = run_motet(root, "start", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("motet: error: ") and "boom_step.py" in result.stderr
    assert "no config for you" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_config_names_the_file_and_field(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app",
        toml='port = 3000\n[queues."order.placed"]\nmax_retries = "many"\n',
        files=BASIC_STEPS,
    )
    result = run_motet(root, "start", "--port", "0")
    assert result.returncode == 2
    assert "motet.toml" in result.stderr and 'queues."order.placed".max_retries' in (
        result.stderr.replace("'", "")
    ), result.stderr
    assert "Traceback" not in result.stderr


def test_database_that_cannot_be_opened_is_status_1(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    (root / "not-a-folder").write_text("a file where a folder should be")
    unwritable = run_motet(
        root, "start", "--port", "0", "--backend", "sqlite:not-a-folder/motet.db"
    )
    assert unwritable.returncode == 1, unwritable.stderr
    assert unwritable.stderr.startswith("motet: error: ") and "Traceback" not in (unwritable.stderr)
    assert "not-a-folder" in unwritable.stderr
    (root / "corrupt.db").write_bytes(b"this is not a database" * 300)
    corrupt = run_motet(root, "start", "--port", "0", "--backend", "sqlite:corrupt.db")
    assert corrupt.returncode == 1
    assert "corrupt.db" in corrupt.stderr and "not a database" in corrupt.stderr
    assert corrupt.stderr.count("\n") == 1


def test_an_unknown_backend_is_the_users_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    result = run_motet(root, "start", "--backend", "postgres://x")
    assert result.returncode == 2
    assert result.stderr.startswith("motet: error: --backend: unknown backend 'postgres://x'")
