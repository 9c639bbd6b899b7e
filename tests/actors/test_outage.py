"""Backoff and logging of a loop that meets an unavailable backend (issue 11, item 9)."""

from __future__ import annotations

import itertools
from typing import Any

import trio
from trio.testing import MockClock

from motet._errors import BackendUnavailable
from motet.actors._outage import OUTAGE_LOG_EVERY, OUTAGE_MAX_WAIT, Outage


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def error(self, message: str, **fields: Any) -> None:
        self.lines.append(("error", message, fields))

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append(("info", message, fields))


async def test_backoff_doubles_to_a_cap_logs_once_a_minute_and_says_when_it_is_over(
    autojump_clock: MockClock,
) -> None:
    log = Lines()
    outage = Outage(lambda: log, "acknowledge messages")
    full = BackendUnavailable("sqlite backend: cannot write to /d/motet.db: disk is full")
    waits = []
    for _ in range(40):
        before = trio.current_time()
        await outage.failed(full)
        waits.append(round(trio.current_time() - before, 3))
    assert waits[:4] == [0.05, 0.1, 0.2, 0.4]
    assert max(waits) == OUTAGE_MAX_WAIT and waits[-1] == OUTAGE_MAX_WAIT
    errors = [line for line in log.lines if line[0] == "error"]
    at = [fields["for_seconds"] for _, _, fields in errors]
    assert at[0] == 0 and len(at) >= 2  # at the first failure, then about once a minute
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert all(OUTAGE_LOG_EVERY <= gap <= OUTAGE_LOG_EVERY + OUTAGE_MAX_WAIT for gap in gaps)
    assert errors[0][1] == "backend unavailable: cannot acknowledge messages; retrying with backoff"
    assert errors[0][2]["error"] == str(full) and errors[0][2]["failures"] == 1
    outage.ok()
    assert log.lines[-1][:2] == ("info", "backend available again: acknowledge messages works")
    assert log.lines[-1][2]["failures"] == 40
    outage.ok()  # nothing to say while all is well
    assert len([line for line in log.lines if line[0] == "info"]) == 1
    before = trio.current_time()
    await outage.failed(full)  # a new outage starts from the first wait, and is logged
    assert round(trio.current_time() - before, 3) == 0.05
    assert log.lines[-1][0] == "error" and log.lines[-1][2]["failures"] == 1
