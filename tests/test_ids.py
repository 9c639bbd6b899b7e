"""Ids: new_id is a time-ordered UUIDv7 in hex, random_id random throughout."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest

import motet._envelope as envelope_module
from motet._envelope import new_id, random_id
from motet._logging import LogRecord, format_pretty
from motet.gateway import accept_trace_id


def _at(monkeypatch: pytest.MonkeyPatch, millis: int) -> None:
    """Make new_id read `millis` from the OS clock (the only thing it reads from it)."""
    monkeypatch.setattr(envelope_module, "time", SimpleNamespace(time_ns=lambda: millis * 10**6))


def test_new_id_is_a_uuid7_in_hex_and_a_trace_id_the_gateway_accepts() -> None:
    for _ in range(1000):
        made = new_id()
        assert len(made) == 32 and made == made.lower() and int(made, 16) >= 0
        parsed = uuid.UUID(made)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert accept_trace_id(made) == made
        assert accept_trace_id(str(parsed)) == made  # the dashed form names the same trace


def test_new_id_starts_with_its_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 0x0123_4567_89AB)
    assert new_id().startswith("0123456789ab7")


def test_ids_made_in_later_milliseconds_sort_after(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    for millis in (1_800_000_000_000, 1_800_000_000_001, 1_800_000_060_000, 1_900_000_000_000):
        _at(monkeypatch, millis)
        made.append(new_id())
    assert made == sorted(made)


def test_new_ids_made_in_one_millisecond_are_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    # A MockClock run, or a burst, makes many ids with one time prefix: the 74 random bits
    # keep them apart.
    _at(monkeypatch, 1_800_000_000_000)
    made = {new_id() for _ in range(100_000)}
    assert len(made) == 100_000
    assert len({m[-8:] for m in made}) > 99_000  # the tail is random (log and console show it)


def test_a_clock_before_1970_or_past_the_48_bit_range_still_gives_32_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing guarantees the OS clock is sane; an id must keep its form whatever it reads.
    for millis in (0, (1 << 48) - 1):
        _at(monkeypatch, millis)
        assert len(new_id()) == 32


def test_random_id_prefixes_do_not_share_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 1_800_000_000_000)
    made = [random_id() for _ in range(10_000)]
    assert len({r[:12] for r in made}) == 10_000
    assert all(len(r) == 32 and int(r, 16) >= 0 for r in made)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_other_ids_than_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    _at(monkeypatch, 1_800_000_000_000)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its PRNG was reseeded at fork
        os.write(write, (new_id() + random_id()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert child[:32] != new_id() and child[32:] != random_id()


def test_pretty_log_lines_show_the_random_end_of_the_trace_id() -> None:
    trace = new_id()
    record = LogRecord(time=0.0, level="info", message="hi", trace_id=trace)
    assert f"trace={trace[-8:]}" in format_pretty(record)
