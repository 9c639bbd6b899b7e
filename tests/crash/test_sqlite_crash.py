"""kill -9 of a real `motet start` on the SQLite backend: nothing accepted is lost.

Sized for CI; bench/crash_sqlite.py runs the same scenarios at full size. Each test names
the random seed or the figures it saw in its failure message.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._scenarios import (
    dead_letters_survive_kill,
    handler_kills_itself,
    kill_after_accept,
    kill_during_work,
    make_project,
    retry_survives_kill,
    sqlite_write_lock,
)

SEED = int(os.environ.get("MOTET_CRASH_SEED", "0")) or int.from_bytes(os.urandom(2), "big")


def test_kill_at_a_random_moment_loses_no_accepted_job(tmp_path: Path) -> None:
    root = make_project(tmp_path / "app")
    result = kill_during_work(root, jobs=1000, seed=SEED)
    where = f"(seed {SEED}, killed after {result.killed_after} accepted; {result})"
    assert result.accepted >= 1002 and result.emitted == 2, where  # and 1,000+ over HTTP
    assert result.lost == set(), where
    # At least once: only what was leased when the process died may run twice.
    assert result.unexpected_duplicates == set(), where
    assert result.strangers == set(), where


def test_a_job_answered_2xx_survives_a_kill_right_after(tmp_path: Path) -> None:
    result = kill_after_accept(tmp_path, trials=50)
    assert result.missing_after_kill == [], result
    assert result.lost == [], result


def test_a_retry_survives_a_kill_and_fires_after_restart_not_before_it_is_due(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "app", retry_delay=3.0)
    result = retry_survives_kill(root, retry_delay=3.0, kill_after=1.0)
    assert result.attempts == 2, result
    assert result.fired_at is not None, result
    # The due time was stored by the killed process: at least the jittered delay (±10 %)
    # after the first attempt, and the retry did not run before it.
    assert result.due >= result.first_at + 3.0 * 0.9, result
    assert result.fired_at >= result.due, result


def test_a_handler_that_kills_its_process_ends_in_dead_letters(tmp_path: Path) -> None:
    root = make_project(tmp_path / "app", suicide_retries=2)
    result = handler_kills_itself(root, attempts=3, max_restarts=5)
    # 1 attempt + 2 retries, each ending with a dead process; the 4th delivery is buried
    # without running the handler.
    assert result.deliveries == 3, result
    assert result.dead_letters == 1, result
    assert result.settled, result


def test_a_kill_between_exhausted_and_stored_neither_loses_nor_duplicates_a_dead_letter(
    tmp_path: Path,
) -> None:
    # Seed 003: `dead_letter_queue: message.failed` and no step subscribed to it.
    root = tmp_path / "app"
    result = dead_letters_survive_kill(root, messages=20, freeze=lambda: sqlite_write_lock(root))
    # Every burial was in flight at the kill: logged as exhausted, not yet stored.
    assert result.exhausted_before_kill == 20 and result.stored_at_kill == 0, result
    assert result.lost == [], result
    assert result.duplicated == [], result
    assert result.left_queued == 0, result
    # Buried after the restart by the delivery that found its attempts used up.
    assert result.without_traceback == 20, result
