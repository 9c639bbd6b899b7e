"""Delayed emits, idempotency keys and expiry through the runtime: ctx.emit (keyword and
dict forms), Runtime.emit, the test harness, queue config, and wrong inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from motet import queue
from motet._envelope import is_expired
from motet.backends import MemoryBackend
from motet.backends._sqlite import SqliteBackend
from motet.steps import load_step
from motet.testing import open_test_runtime

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def recorder(seen: list[tuple[Any, datetime]]) -> Any:
    async def handle(data: Any, ctx: Any) -> None:
        seen.append((data, ctx.now()))

    return handle


def worker(seen: list[tuple[Any, datetime]], **options: Any) -> Any:
    return load_step({"name": "Worker", "triggers": [queue("job", **options)]}, recorder(seen))


async def test_ctx_emit_with_a_delay_runs_the_handler_then(autojump_clock: Any) -> None:
    seen: list[tuple[Any, datetime]] = []

    async def kick(data: Any, ctx: Any) -> None:
        await ctx.emit("job", {"form": "keyword"}, delay=timedelta(minutes=5))
        await ctx.emit({"topic": "job", "data": {"form": "dict"}, "delay": 60})
        await ctx.emit("job", {"form": "text"}, delay="1h")
        await ctx.emit("job", {"form": "at"}, at=START + timedelta(hours=2))

    steps = [
        load_step({"name": "Kick", "triggers": [queue("kick")], "enqueues": ["job"]}, kick),
        worker(seen),
    ]
    async with open_test_runtime(steps, start=START) as app:
        await app.emit("kick")
        await app.settle(fail_fast=True)
        assert seen == []  # settle does not wait for delayed messages
        await app.advance(timedelta(hours=3))
        await app.settle(fail_fast=True)
    assert [(d["form"], when - START) for d, when in seen] == [
        ("dict", timedelta(minutes=1)),
        ("keyword", timedelta(minutes=5)),
        ("text", timedelta(hours=1)),
        ("at", timedelta(hours=2)),
    ]


async def test_harness_emit_time_travels_a_delayed_message(autojump_clock: Any) -> None:
    seen: list[tuple[Any, datetime]] = []
    async with open_test_runtime([worker(seen)], start=START) as app:
        await app.emit("job", {"n": 1}, delay=timedelta(days=1))
        await app.advance(timedelta(hours=23))
        await app.settle()
        assert seen == []
        await app.advance(timedelta(hours=1))
        await app.settle()
    assert seen == [({"n": 1}, START + timedelta(days=1))]


async def test_runtime_emit_takes_the_same_options(autojump_clock: Any) -> None:
    seen: list[tuple[Any, datetime]] = []
    async with open_test_runtime([worker(seen)], start=START) as app:
        first = await app.runtime.emit("job", 1, key="order-42", delay=10)
        again = await app.runtime.emit("job", 2, key="order-42")
        assert again == first
        await app.advance(11)
        await app.settle()
    assert [d for d, _ in seen] == [1]


async def test_a_repeated_key_returns_the_first_id_within_the_queue_window(
    autojump_clock: Any,
) -> None:
    seen: list[tuple[Any, datetime]] = []
    ids: list[str] = []

    async def kick(data: Any, ctx: Any) -> None:
        ids.append(await ctx.emit("job", data, key="order-42"))

    steps = [
        load_step({"name": "Kick", "triggers": [queue("kick")], "enqueues": ["job"]}, kick),
        worker(seen, dedup_window="1h"),
    ]
    async with open_test_runtime(steps, start=START) as app:
        for n in range(3):
            await app.emit("kick", n)
            await app.settle(fail_fast=True)
        await app.advance(timedelta(hours=1, seconds=1))
        await app.emit("kick", 3)
        await app.settle(fail_fast=True)
        assert [e.data for e in app.envelopes("job")] == [0, 3]  # repeats are not observed
    assert ids[:3] == [ids[0]] * 3 and ids[3] != ids[0]
    assert [d for d, _ in seen] == [0, 3]


async def test_a_message_waiting_behind_a_slow_handler_expires_unrun(
    autojump_clock: Any,
) -> None:
    ran: list[str] = []

    async def slow(data: Any, ctx: Any) -> None:
        ran.append(data)
        await trio.sleep(60)

    step = load_step({"name": "Worker", "triggers": [queue("job", concurrency=1)]}, slow)
    async with open_test_runtime([step], start=START) as app:
        await app.emit("job", "first")
        await app.emit("job", "stale", expires=timedelta(seconds=30))
        await app.emit("job", "patient", expires=120)
        await app.settle()
        letters = await app.dead_letters("Worker")
    assert ran == ["first", "patient"]
    [letter] = letters
    assert letter.envelope.data == "stale"
    assert letter.error == "Expired: not started by 2026-01-05T09:00:30Z"
    assert is_expired(letter)


async def test_ttl_in_the_project_config_expires_messages(autojump_clock: Any) -> None:
    seen: list[tuple[Any, datetime]] = []
    step = load_step(
        {"name": "Worker", "triggers": [queue("job", ttl=5, concurrency=1)]}, recorder(seen)
    )
    async with open_test_runtime([step], start=START) as app:
        backend = app.runtime.backend
        assert isinstance(backend, MemoryBackend)
        # Three at once with one slot, lease ahead: the stale ones expire before a start.
        await app.emit("job", "late", at=START - timedelta(seconds=10))
        await app.settle()
        [letter] = await app.dead_letters("Worker")
        assert letter.error.startswith("Expired: not started by 2026-01-05T08:59:55")
        assert letter.attempts == 0
        assert await app.redrive([letter]) == 1
        await app.settle()
    assert [d for d, _ in seen] == ["late"]


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"at": datetime(2026, 1, 5, 9, 0)}, ValueError, "aware datetime"),
        ({"delay": -1}, ValueError, "finite duration >= 0"),
        ({"delay": "soon"}, ValueError, "is not a duration"),
        ({"delay": [1]}, TypeError, "number of seconds"),
        ({"delay": 1, "at": START}, TypeError, "not both"),
        ({"key": ""}, TypeError, "non-empty string"),
        ({"key": 42}, TypeError, "non-empty string"),
        ({"expires": 0}, ValueError, "> 0"),
    ],
)
async def test_wrong_options_fail_at_the_emit(
    autojump_clock: Any, options: dict[str, Any], error: type[Exception], words: str
) -> None:
    async with open_test_runtime([worker([])], start=START) as app:
        with pytest.raises(error, match=words):
            await app.emit("job", 1, **options)
        assert app.envelopes("job") == []


async def test_a_dict_emit_with_an_unknown_key_is_refused(autojump_clock: Any) -> None:
    errors: list[Exception] = []

    async def kick(data: Any, ctx: Any) -> None:
        try:
            await ctx.emit({"topic": "job", "data": 1, "delayMs": 5})
        except TypeError as exc:
            errors.append(exc)

    steps = [
        load_step({"name": "Kick", "triggers": [queue("kick")], "enqueues": ["job"]}, kick),
        worker([]),
    ]
    async with open_test_runtime(steps, start=START) as app:
        await app.emit("kick")
        await app.settle(fail_fast=True)
    assert "'delay'/'at'/'key'/'expires'" in str(errors[0])


async def test_a_delayed_message_due_while_down_runs_at_start_on_sqlite(tmp_path: Path) -> None:
    seen: list[tuple[Any, datetime]] = []
    path = tmp_path / "motet.db"
    async with open_test_runtime([worker(seen)], backend=SqliteBackend(path)) as app:
        await app.emit("job", "later", delay=2)
        await app.emit("job", "now")
        await app.settle()
    assert [d for d, _ in seen] == ["now"]
    await trio.sleep(2.1)  # real time: the runtime is down when the message comes due
    async with open_test_runtime([worker(seen)], backend=SqliteBackend(path)) as app:
        with trio.fail_after(10):
            while len(seen) < 2:
                await app.settle()
                await trio.sleep(0.05)
    assert [d for d, _ in seen] == ["now", "later"]


async def test_a_plain_def_handler_emits_later_from_its_thread(autojump_clock: Any) -> None:
    seen: list[tuple[Any, datetime]] = []

    def kick(data: Any, ctx: Any) -> None:  # runs in a worker thread
        ctx.emit("job", "from a thread", delay=timedelta(minutes=1), key="k")

    steps = [
        load_step({"name": "Kick", "triggers": [queue("kick")], "enqueues": ["job"]}, kick),
        worker(seen),
    ]
    async with open_test_runtime(steps, start=START) as app:
        await app.emit("kick")
        await app.emit("kick")
        await app.settle(fail_fast=True)
        await app.advance(timedelta(minutes=1))
        await app.settle(fail_fast=True)
    assert seen == [("from a thread", START + timedelta(minutes=1))]
