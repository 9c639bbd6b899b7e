"""`motet start -c FILE` (as `iii -c iii-config.yaml`), `--config`, `MOTET_CONFIG`, a Motia
project's iii-config.yaml found in the folder, and the start report on the command line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
from click.testing import CliRunner

from motet.cli import main
from motet.cli._app import Project
from motet.cli._dev import child_command

from ._project import Motet, run_motet, write_project

QUEUE_STEP = """\
config = {
    "type": "event",
    "name": "Work",
    "subscribes": ["work"],
    "emits": [],
}


async def handler(input, context):
    pass
"""
NOOP = """\
config = {"type": "noop", "name": "Outside", "virtualEmits": ["work"]}
"""
FILES = {"steps/work_step.py": QUEUE_STEP, "steps/outside_step.py": NOOP}


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def queue_options(url: str) -> dict[str, object]:
    queues = httpx.get(url + "/_motet/queues").json()["queues"]
    return dict(next(q["options"] for q in queues if q["topic"] == "work"))


def test_start_dash_c_reads_that_yaml_file_alone(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", toml='backend = "memory"\n', files=FILES)
    write(root, "iii-config.yaml", "queues:\n  work:\n    maxRetries: 1\n")
    prod = write(
        root,
        "prod-iii.yaml",
        """
        queues:
          work:
            max_retries: 7
            retryDelay: 250
            concurrency: 3
            strategy: fifo
        modules:
          - class: modules::cron::CronModule
        """,
    )
    app = Motet(root, "start", "-c", prod.name, "--port", "0", env={"MOTET_LOG_FORMAT": "json"})
    try:
        url = app.started()
        options = queue_options(url)
        assert options["max_retries"] == 7 and options["retry_delay"] == 250
        assert options["concurrency"] == 3 and options["strategy"] == "fifo"
        said = [str(r.get("msg")) for r in app.records()]
        assert any(f"config: {prod} (from -c; a Motia project" in line for line in said), said
        assert sum("modules::cron::CronModule" in line for line in said) == 1
        # -c reads that file alone: not the folder's motet.toml (backend memory), nor its
        # iii-config.yaml.
        assert not any("motet.toml" in line for line in said)
        assert (root / ".motet" / "motet.db").exists()
    finally:
        app.signal()
        assert app.wait() == 0


def test_start_finds_iii_config_yaml_and_says_motet_toml_wins(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", toml="[queues.work]\nmax_retries = 0\n", files=FILES)
    write(root, "iii-config.yaml", "queues:\n  work:\n    maxRetries: 4\n    concurrency: 2\n")
    app = Motet(root, "start", "--port", "0", env={"MOTET_LOG_FORMAT": "json"})
    try:
        options = queue_options(app.started())
        assert options["max_retries"] == 0 and options["concurrency"] == 2
        said = [str(r.get("msg")) for r in app.records()]
        assert any("motet.toml wins" in line for line in said), said
        assert any("queues.'work'.max_retries: motet.toml's 0 wins over 4" in line for line in said)
    finally:
        app.signal()
        assert app.wait() == 0


def test_a_bad_yaml_value_is_one_line_naming_file_line_and_key(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", toml=None, files=FILES)
    write(root, "iii-config.yaml", "queues:\n  work:\n    concurrency: lots\n")
    done = run_motet(root, "start", "--port", "0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"motet: error: {root / 'iii-config.yaml'}, line 3, field 'queues.work.concurrency': "
        "expected an integer, got 'lots'"
    ]


def test_motet_config_variable_and_long_flag_name_the_file(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", toml=None, files=FILES)
    other = write(root, "other.toml", "port = 4321\n")
    env_run = CliRunner().invoke(
        main, ["--project", str(root), "steps"], env={"MOTET_CONFIG": str(root / "missing.yaml")}
    )
    assert env_run.exit_code == 2
    assert "missing.yaml: no such file (given by MOTET_CONFIG)" in env_run.output
    result = CliRunner().invoke(main, ["start", "--help"])
    assert "-c, --config FILE" in result.output and "MOTET_CONFIG" in result.output
    # motet dev hands the file to each child it starts.
    command = child_command(Project(root), {"config_file": str(other)})
    assert command[command.index("--config") + 1] == str(other)


def test_motet_steps_prints_the_start_report(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", toml=None, files=FILES)
    write(root, "iii-config.yaml", "queues: {}\nworkers: 4\n")
    result = CliRunner().invoke(main, ["--project", str(root), "steps"])
    assert result.exit_code == 0
    assert "motet: config: iii-config.yaml (a Motia project" in result.output
    assert "motet: not used: iii-config.yaml line 2: workers is not used" in result.output
