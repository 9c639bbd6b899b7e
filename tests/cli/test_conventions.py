"""What a Python developer expects of a command: `--version`, `python -m motet`, `--debug`
wherever it is typed, the environment documented in `--help`, tables that stay aligned."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from motet.cli import main
from motet.project import ENV_VARS

from ._project import BASIC_STEPS, write_project
from .test_commands import run_the_steps


def motet(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_version_is_the_installed_package_version() -> None:
    result = motet("--version")
    assert result.exit_code == 0
    assert result.output == f"motet {version('motet')}\n"


def test_python_dash_m_motet_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "motet", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"motet {version('motet')}\n"
    usage = subprocess.run(
        [sys.executable, "-m", "motet", "no-such-command"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 2 and "Usage: motet" in usage.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--debug", "graph"),
        ("graph", "--debug"),
        ("dlq", "list", "--debug"),
        ("dlq", "--debug", "list"),
    ],
)
def test_debug_works_before_or_after_the_subcommand(tmp_path: Path, args: tuple[str, ...]) -> None:
    root = write_project(
        tmp_path / "bad",
        toml='[motet]\nport = "eighty"\n' if "dlq" in args else None,
        files={
            "steps/x_step.py": 'config = {"name": "X", "triggers": [{"type": "queue"}]}\n'
            "async def handler(i, ctx):\n    pass\n"
        },
    )
    plain = motet("--project", str(root), *[a for a in args if a != "--debug"])
    assert plain.exit_code == 2 and plain.exception is not None
    assert isinstance(plain.exception, SystemExit)  # one line, no traceback
    debug = motet("--project", str(root), *args)
    assert debug.exit_code == 1
    assert not isinstance(debug.exception, SystemExit)  # raised, so shown in full


def test_debug_after_the_subcommand_reaches_the_project(tmp_path: Path) -> None:
    from motet.cli import _main

    seen: list[bool] = []
    original = _main.list_steps.callback
    assert original is not None

    def spy(**_flags: object) -> None:
        seen.append(click.get_current_context().obj.debug)

    root = write_project(tmp_path / "app", files=BASIC_STEPS)
    _main.list_steps.callback = spy
    try:
        assert motet("--project", str(root), "steps", "--debug").exit_code == 0
        assert motet("--project", str(root), "steps").exit_code == 0
    finally:
        _main.list_steps.callback = original
    assert seen == [True, False]


def test_start_help_names_every_environment_variable() -> None:
    for command in ("start", "dev"):
        result = motet(command, "--help")
        assert result.exit_code == 0
        for key, var in ENV_VARS.items():
            assert any(line.split() == [var, key] for line in result.output.splitlines()), var
    assert {"MOTET_BACKEND", "MOTET_PORT", "MOTET_HOST", "MOTET_LOG_FORMAT"} <= set(
        ENV_VARS.values()
    )


def test_dlq_list_columns_stay_aligned_with_long_names(tmp_path: Path) -> None:
    long_name = "ReconcileEveryInvoiceOfTheQuarterWithTheLedger"
    files = {
        **BASIC_STEPS,
        "steps/long_step.py": BASIC_STEPS["steps/fail_step.py"]
        .replace('"AlwaysFails"', repr(long_name).replace("'", '"'))
        .replace("work.fail", "work.long"),
    }
    root = write_project(tmp_path / "app", files=files)
    for topic in ("work.fail", "work.long"):
        assert motet("--project", str(root), "emit", topic, '"a"').exit_code == 0
    assert len(run_the_steps(root)) == 2
    rows = motet("--project", str(root), "dlq", "list").output.splitlines()
    assert len(rows) == 3 and any(long_name in row for row in rows)
    header = rows[0]
    for title in ("SUBSCRIPTION", "ATTEMPTS", "FAILED AT", "ERROR"):
        column = header.index(title)
        for row in rows[1:]:
            assert row[column - 2 : column] == "  " and row[column] != " ", (title, row)
    assert all(row.endswith("RuntimeError: cannot do 'a'") for row in rows[1:])
