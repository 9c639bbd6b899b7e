"""No command prints a backend URL's password (issue 11, item 6): `motet start|emit|dlq|state`
against a Redis that requires a password, given the wrong one, and against a Redis that is
down, say which host failed with the credentials replaced by `***`."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from motet._redact import redact
from motet.cli import main

from .._redis_server import RedisServer, free_port, redis_server
from ._project import BASIC_STEPS, DEADLINE, write_project

SECRET = "s3cret-pw-7781"

# coredis 6.9 leaks the memory streams of a connection whose connect() failed (see
# tests/backends/test_redis_failures.py): ignored here, and collected after each test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Unclosed <MemoryObject:ResourceWarning",
    "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning",
)


@pytest.fixture(autouse=True)
def collect_leaked_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server(extra=("--requirepass", SECRET)) as started:
        yield started


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "app", files=BASIC_STEPS)


def urls(server: RedisServer) -> dict[str, str]:
    down = free_port()
    return {
        "wrong password": f"redis://:{SECRET}x@127.0.0.1:{server.port}/0",
        "wrong user:password": f"redis://bob:{SECRET}@127.0.0.1:{server.port}/0",
        "redis down": f"redis://:{SECRET}@127.0.0.1:{down}/0",
        "malformed": f"redis://:{SECRET}@127.0.0.1:12x/0",
        "unknown scheme": f"redsi://:{SECRET}@127.0.0.1:{down}/0",
    }


@pytest.mark.parametrize(
    "command",
    [
        ["emit", "order.placed", "{}"],
        ["dlq", "list"],
        ["dlq", "redrive", "--all"],
        ["state", "get", "ns", "k"],
    ],
)
def test_commands_never_print_the_password(
    root: Path, server: RedisServer, command: list[str]
) -> None:
    for case, url in urls(server).items():
        result = CliRunner().invoke(main, ["--project", str(root), *command, "--backend", url])
        assert result.exit_code != 0, (case, result.output)
        assert SECRET not in result.output, (case, result.output)
        assert "***" in result.output, (case, result.output)


def test_start_never_prints_the_password(root: Path, server: RedisServer) -> None:
    for case, url in urls(server).items():
        start = ["start", "--port", "0", "--backend", url]
        done = subprocess.run(
            [sys.executable, "-m", "motet.cli", "--project", str(root), *start],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        output = done.stdout + done.stderr
        assert done.returncode != 0, (case, output)
        assert SECRET not in output, (case, output)
        assert "127.0.0.1:" in output and "***" in output, (case, output)


def test_the_right_password_still_works(root: Path, server: RedisServer) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
    result = CliRunner().invoke(main, ["--project", str(root), "dlq", "list", "--backend", url])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:pw@h:1/0", "redis://***@h:1/0"),
        ("redis://user:pw@h/0", "redis://***@h/0"),
        ("rediss://user@h", "rediss://***@h"),
        ("unix://:pw@/run/redis.sock?db=1", "unix://***@/run/redis.sock?db=1"),
        ("redis://u:p@ss@h:1/0", "redis://***@h:1/0"),  # an unescaped '@' in the password
        ("at 'redis://:pw@h:1/0' (refused)", "at 'redis://***@h:1/0' (refused)"),
        ("redis://h:1/0?password=pw&db=2", "redis://h:1/0?password=***&db=2"),
        ("redis://h:1/0", "redis://h:1/0"),
        (
            "mail a@b.example, see https://x.example/a@b",
            "mail a@b.example, see https://x.example/a@b",
        ),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
