"""Project config from motet.toml / [tool.motet], and queue option resolution by topic."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from motet._envelope import QueueOptions
from motet._errors import ProjectConfigError
from motet.project import ProjectConfig, load_project, resolve_queue_options
from motet.steps import QueueOverrides, queue

FULL = """
    steps = "src/steps"
    backend = "redis://127.0.0.1:6390/0"
    host = "0.0.0.0"
    port = 8080
    timezone = "Europe/Paris"
    cron_grace = 5
    log_format = "json"
    log_level = "WARNING"
    token = "s3cret"

    [queue]
    max_retries = 5
    concurrency = 2
    prefetch = 50

    [queues."message.sent"]
    max_retries = 3
    retry_delay = 5000
    concurrency = 5
    dead_letter_queue = "message.failed"

    [queues.process-order]
    strategy = "fifo"
    maxRetries = 3
    retryDelay = 1000

    [queues.send-email]
    strategy = "priority"
    maxConcurrency = 10
"""


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    project = load_project(tmp_path)
    assert project == ProjectConfig(root=tmp_path)
    assert project.file is None
    assert (project.steps, project.backend, project.host, project.port) == (
        "steps",
        "sqlite",
        "127.0.0.1",
        3000,
    )
    assert (project.timezone, project.cron_grace, project.log_format, project.log_level) == (
        "UTC",
        60.0,
        "pretty",
        "info",
    )
    assert project.token is None
    assert project.steps_dir == tmp_path / "steps"


def test_motet_toml_every_field(tmp_path: Path) -> None:
    file = write(tmp_path, "motet.toml", FULL)
    project = load_project(tmp_path)
    assert project.file == file
    assert project.steps_dir == tmp_path / "src" / "steps"
    assert project.backend == "redis://127.0.0.1:6390/0"
    assert (project.host, project.port, project.timezone) == ("0.0.0.0", 8080, "Europe/Paris")
    assert (project.cron_grace, project.log_format, project.log_level) == (5.0, "json", "warn")
    assert project.token == "s3cret"
    assert project.queue == QueueOverrides(max_retries=5, concurrency=2, prefetch=50)
    assert project.queues == {
        "message.sent": QueueOverrides(
            max_retries=3, retry_delay=5000, concurrency=5, dead_letter_queue="message.failed"
        ),
        "process-order": QueueOverrides(strategy="fifo", max_retries=3, retry_delay=1000),
        "send-email": QueueOverrides(strategy="priority", concurrency=10),
    }


def test_pyproject_tool_motet(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "pyproject.toml",
        """
        [project]
        name = "pets"

        [tool.motet]
        port = 4000

        [tool.motet.queues."pet.created"]
        max_retries = 1
        """,
    )
    project = load_project(tmp_path)
    assert project.file == file
    assert project.port == 4000
    assert project.queues == {"pet.created": QueueOverrides(max_retries=1)}


def test_pyproject_without_tool_motet_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 1\n')
    assert load_project(tmp_path) == ProjectConfig(root=tmp_path)


def test_motet_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[tool.motet]\nport = 1\n")
    write(tmp_path, "motet.toml", "port = 2\n")
    assert load_project(tmp_path).port == 2


@pytest.mark.parametrize(
    ("text", "field", "pattern"),
    [
        (
            "prot = 3000",
            "prot",
            r"unknown key 'prot'; allowed: backend, cron_grace, handlers, host",
        ),
        ("port = '3000'", "port", "port number 0-65535, got '3000'"),
        ("port = 70000", "port", "got 70000"),
        ("port = true", "port", "got True"),
        ("steps = ''", "steps", "non-empty string"),
        ("host = 127", "host", "non-empty string, got 127"),
        ("backend = 'postgres'", "backend", "expected one of \\['memory', 'sqlite', 'redis'\\]"),
        ("backend = 'mysql://x'", "backend", "got 'mysql://x'"),
        ("timezone = 'Paris'", "timezone", "unknown timezone 'Paris'"),
        ("timezone = 1", "timezone", "non-empty string"),
        ("cron_grace = -1", "cron_grace", "seconds >= 0, got -1"),
        ("cron_grace = '60s'", "cron_grace", "got '60s'"),
        ("log_format = 'xml'", "log_format", "one of \\['pretty', 'json'\\], got 'xml'"),
        ("log_level = 'loud'", "log_level", "got 'loud'"),
        ("log_level = 3", "log_level", "got 3"),
        ("token = 5", "token", "non-empty string"),
        ("queue = 5", "queue", "table of queue options"),
        ("[queue]\nmax_retries = '3'", "queue.max_retries", "expected an integer, got '3'"),
        ("[queue]\nretries = 3", "queue.retries", "unknown queue option 'retries'; allowed: "),
        ("[queue]\nstrategy = 'lifo'", "queue.strategy", "got 'lifo'"),
        ("[queue]\nconcurrency = 0", "queue.concurrency", ">= 1"),
        ("[queue]\ntimeout = -1", "queue.timeout", "> 0"),
        (
            "[queue]\nmax_retries = 1\nmaxRetries = 2",
            "queue.maxRetries",
            "given twice, as 'max_retries' and 'maxRetries'",
        ),
        ("queues = 1", "queues", "expected tables"),
        (
            '[queues."message.sent"]\nretryDelay = 1.5',
            'queues."message.sent".retryDelay',
            "integer \\(milliseconds\\), got 1.5",
        ),
        ("[queues.jobs]\ndead_letter_queue = ''", "queues.jobs.dead_letter_queue", "topic name"),
        ("queues = { jobs = 3 }", "queues.jobs", "table of queue options, got 3"),
        ("[queues.jobs]\nttl = 'soon'", "queues.jobs.ttl", "'soon' is not a duration"),
        ("[queues.jobs]\nttl = 0", "queues.jobs.ttl", "duration > 0, got 0"),
        ("[queues.jobs]\ndedupWindow = true", "queues.jobs.dedupWindow", "number of seconds"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, text: str, field: str, pattern: str) -> None:
    file = write(tmp_path, "motet.toml", text + "\n")
    with pytest.raises(ProjectConfigError, match=pattern) as info:
        load_project(tmp_path)
    assert info.value.file == file
    assert info.value.field == field
    assert str(info.value).startswith(f"{file}, field {field!r}: ")


def test_errors_in_pyproject_are_prefixed(tmp_path: Path) -> None:
    file = write(tmp_path, "pyproject.toml", "[tool.motet]\nport = 'x'\n")
    with pytest.raises(ProjectConfigError) as info:
        load_project(tmp_path)
    assert (info.value.file, info.value.field) == (file, "tool.motet.port")
    write(tmp_path, "pyproject.toml", "[tool]\nmotet = 3\n")
    with pytest.raises(ProjectConfigError, match="expected a table"):
        load_project(tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    file = write(tmp_path, "motet.toml", "port = \n")
    with pytest.raises(ProjectConfigError, match="not valid TOML") as info:
        load_project(tmp_path)
    assert info.value.file == file
    assert info.value.__cause__ is not None


def test_resolution_order(tmp_path: Path) -> None:
    write(tmp_path, "motet.toml", FULL)
    project = load_project(tmp_path)
    trigger = queue("message.sent", concurrency=1, strategy="fifo").options
    assert resolve_queue_options(project, "message.sent", trigger) == QueueOptions(
        max_retries=3,  # [queues."message.sent"] over [queue]
        retry_delay=5000,
        concurrency=1,  # the trigger over both
        dead_letter_queue="message.failed",
        strategy="fifo",
        prefetch=50,
    )
    other = resolve_queue_options(project, "other", QueueOverrides())
    assert other == QueueOptions(
        max_retries=5,
        concurrency=2,  # [queue] over built-in defaults
        prefetch=50,
    )
    assert other.lease_ahead == 50
    send = resolve_queue_options(project, "send-email", QueueOverrides(lease=5))
    assert send == QueueOptions(
        max_retries=5, concurrency=10, strategy="priority", lease=5.0, prefetch=50
    )
    assert send.lease_ahead == 0  # a priority queue never leases ahead
    assert QueueOptions(concurrency=7).lease_ahead == 28  # unset: four per handler slot


def test_resolution_without_project_is_defaults_then_trigger() -> None:
    assert resolve_queue_options(None, "t", QueueOverrides()) == QueueOptions()
    assert resolve_queue_options(ProjectConfig(), "t", QueueOverrides(max_retries=0)) == (
        QueueOptions(max_retries=0)
    )


@pytest.mark.parametrize(
    "backend",
    ["sqlite:data/q.db", "sqlite:///tmp/q.db", "rediss://h:6380/0", "unix:///run/redis.sock"],
)
def test_backend_takes_the_forms_the_command_line_takes(tmp_path: Path, backend: str) -> None:
    (tmp_path / "motet.toml").write_text(f'backend = "{backend}"\n')
    assert load_project(tmp_path).backend == backend


def test_ttl_and_dedup_window_take_durations(tmp_path: Path) -> None:
    write(tmp_path, "motet.toml", '[queues.jobs]\nttl = "5m"\ndedup_window = 3600\n')
    project = load_project(tmp_path)
    options = resolve_queue_options(project, "jobs", QueueOverrides())
    assert (options.ttl, options.dedup_window) == (300.0, 3600.0)
    assert resolve_queue_options(project, "other", QueueOverrides()).dedup_window == 86_400.0
    trigger = queue("jobs", ttl=30, dedupWindow="1h30m")
    assert resolve_queue_options(project, "jobs", trigger.options).ttl == 30.0
    assert trigger.options.dedup_window == 5400.0
