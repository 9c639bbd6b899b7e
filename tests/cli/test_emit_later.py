"""`motet emit --delay/--at/--key/--expires` against a project's real sqlite file, and the
expired dead letters `motet dlq list` shows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .test_commands import motet, root, run_the_steps

__all__ = ["root"]  # the fixture, shared with test_commands

ORDER = '{"id": "o1", "qty": 1}'


def scheduled(root: Path) -> int:
    with sqlite3.connect(root / ".motet" / "motet.db") as conn:
        return int(conn.execute("SELECT count(*) FROM scheduled").fetchone()[0])


def test_a_repeated_key_prints_the_first_id_and_enqueues_nothing(root: Path) -> None:
    first = motet(root, "emit", "order.placed", ORDER, "--key", "order-o1")
    again = motet(root, "emit", "order.placed", ORDER, "--key", "order-o1")
    assert first.exit_code == again.exit_code == 0, first.output + again.output
    assert first.output == again.output and len(first.output.strip()) == 32
    assert run_the_steps(root) == []
    assert json.loads(motet(root, "state", "get", "done", "o1").output) == {"shipped": True}


def test_a_delayed_emit_waits_in_the_file(root: Path) -> None:
    result = motet(root, "emit", "order.placed", ORDER, "--delay", "1h")
    assert result.exit_code == 0, result.output
    assert scheduled(root) == 1
    run_the_steps(root)  # settles at once: the message is not due for an hour
    assert motet(root, "state", "get", "done", "o1").exit_code == 1  # not handled yet
    assert scheduled(root) == 1


def test_an_expired_message_is_listed_with_the_dead_letters(root: Path) -> None:
    result = motet(
        root, "emit", "order.placed", ORDER, "--at", "2020-01-01T00:00:00Z", "--expires", "1s"
    )
    assert result.exit_code == 0, result.output
    [letter] = run_the_steps(root)
    assert letter.error == "Expired: not started by 2020-01-01T00:00:01Z"
    table = motet(root, "dlq", "list").output.splitlines()
    assert "Expired: not started by 2020-01-01T00:00:01Z" in table[1]
    assert table[1].split()[2] == "0"  # attempts: it never ran
    redriven = motet(root, "dlq", "redrive", "--all")
    assert redriven.output == "re-drove 1 dead letter(s)\n"
    assert run_the_steps(root) == []  # a re-driven message never expires
    assert json.loads(motet(root, "state", "get", "done", "o1").output) == {"shipped": True}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--delay", "soon"], "is not a duration"),
        (["--delay", "-5"], "finite duration >= 0"),
        (["--at", "2026-01-05T09:00:00"], "aware datetime"),
        (["--at", "tomorrow"], "not an ISO 8601 time"),
        (["--delay", "5", "--at", "2026-01-05T09:00:00Z"], "not both"),
        (["--expires", "0"], "> 0"),
        (["--key", ""], "--key must not be empty"),
    ],
)
def test_wrong_timing_flags_are_one_line_and_status_2(
    root: Path, flags: list[str], expected: str
) -> None:
    result = motet(root, "emit", "order.placed", ORDER, *flags)
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output
