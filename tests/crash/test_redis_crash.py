"""kill -9 of a real `motet start` on the Redis backend while it buries dead letters."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .._redis_server import RedisServer, redis_server
from ._scenarios import dead_letters_survive_kill


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def stopped(server: RedisServer) -> Callable[[], None]:
    """SIGSTOP the server: every command waits (a frozen or partitioned Redis). Returns the
    SIGCONT."""
    assert server.process is not None
    pid = server.process.pid
    os.kill(pid, signal.SIGSTOP)
    return lambda: os.kill(pid, signal.SIGCONT)


def test_a_kill_between_exhausted_and_stored_neither_loses_nor_duplicates_a_dead_letter(
    tmp_path: Path, redis: RedisServer
) -> None:
    # Seed 003: `dead_letter_queue: message.failed` and no step subscribed to it.
    result = dead_letters_survive_kill(
        tmp_path / "app", messages=20, freeze=lambda: stopped(redis), redis_url=redis.url
    )
    assert result.exhausted_before_kill == 20, result
    assert result.lost == [], result
    assert result.duplicated == [], result
    # A burial Redis had read before the kill runs when it resumes (with the traceback of
    # the attempt that raised); the others end after the restart, their lease lost.
    assert result.without_traceback == 20 - result.stored_at_kill, result
