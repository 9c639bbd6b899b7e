"""`motet message ID` (also --json) and `motet message cancel ID` against a project's real
sqlite file, with click's CliRunner in this process; wrong inputs included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._project import BASIC_STEPS, MOTET_TOML, write_project
from .test_commands import motet, run_the_steps


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # run_the_steps runs on a virtual clock anchored at 2026-01-01, the CLI on the real one:
    # a retention of years keeps the records it settles readable from here.
    toml = "message_retention = 1e9\n" + MOTET_TOML
    return write_project(tmp_path / "app", toml=toml, files=BASIC_STEPS)


def emitted(root: Path, topic: str, data: str) -> str:
    result = motet(root, "emit", topic, data)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_status_of_a_queued_then_done_message(root: Path) -> None:
    message_id = emitted(root, "order.placed", '{"id": "o-1"}')
    queued = motet(root, "message", message_id)
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.splitlines()[0] == (
        f"message {message_id}  topic order.placed  state queued"
    )
    assert "Ship@order.placed: queued, attempts 0" in queued.stdout
    run_the_steps(root)
    done = motet(root, "message", "show", message_id, "--json")
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert body["state"] == "done" and body["deliveries"][0]["attempts"] == 1


def test_cancel_a_queued_message_then_cancel_again(root: Path) -> None:
    message_id = emitted(root, "order.placed", '{"id": "o-2"}')
    cancelled = motet(root, "message", "cancel", message_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == f"message {message_id} cancelled for Ship@order.placed"
    status = motet(root, "message", message_id)
    assert "Ship@order.placed: cancelled, attempts 0" in status.stdout
    again = motet(root, "message", "cancel", message_id)
    assert again.exit_code == 2
    assert "already over (Ship@order.placed)" in again.stderr
    run_the_steps(root)  # nothing runs it


def test_dead_letters_show_in_the_status(root: Path) -> None:
    message_id = emitted(root, "work.fail", '{"n": 1}')
    run_the_steps(root)
    status = motet(root, "message", message_id)
    assert status.exit_code == 0, status.output
    assert "AlwaysFails@work.fail: dead, attempts 2" in status.stdout  # max_retries 1
    assert "motet dlq show" in status.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["message", "0" * 32], "no message 00000000000000000000000000000000 is known"),
        (["message", "cancel", "0" * 32], "no message 00000000000000000000000000000000"),
        (["message", "a b"], "without spaces"),
        (["message", "cancel", "x" * 201], "at most 200 characters"),
    ],
)
def test_wrong_ids_are_one_line_and_status_2(root: Path, args: list[str], expected: str) -> None:
    result = motet(root, *args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_delayed_message_reads_delayed_with_its_due_time_then_cancelled(root: Path) -> None:
    result = motet(root, "emit", "order.placed", '{"id": "o-4"}', "--delay", "1h", "--key", "o-4")
    assert result.exit_code == 0, result.output
    message_id = result.stdout.strip()
    delayed = motet(root, "message", message_id)
    assert delayed.exit_code == 0, delayed.output
    assert delayed.stdout.splitlines()[0].endswith("state delayed")
    assert "Ship@order.placed: delayed, attempts 0" in delayed.stdout
    assert "  due 20" in delayed.stdout and "next try" not in delayed.stdout
    cancelled = motet(root, "message", "cancel", message_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert "Ship@order.placed: cancelled, attempts 0" in motet(root, "message", message_id).stdout
    again = motet(root, "emit", "order.placed", '{"id": "o-4"}', "--key", "o-4")
    assert again.stdout.strip() == message_id  # the key stays taken after a cancel
