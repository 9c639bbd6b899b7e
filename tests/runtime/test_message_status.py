"""Message status by id and cancellation through the whole runtime (memory backend, MockClock):
results, fan-out, retention, result capping, running-handler cancellation, wrong inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import trio

from motet import NonRetryable
from motet.backends import MemoryBackend
from motet.project import ProjectConfig
from motet.steps import load_step
from motet.testing import open_test_runtime


def event_step(name: str, topic: str, handler: Any, **extra: Any) -> Any:
    return load_step({"type": "event", "name": name, "subscribes": [topic], **extra}, handler)


def queue_step(name: str, topic: str, handler: Any, **options: Any) -> Any:
    trigger = {"type": "queue", "topic": topic, **options}
    return load_step({"name": name, "triggers": [trigger]}, handler)


async def test_done_keeps_the_return_value_and_times(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> Any:
        await trio.sleep(2)
        return {"total": data["n"] * 2}

    async with open_test_runtime([event_step("Double", "t", handler)]) as app:
        message_id = await app.emit("t", {"n": 21})
        await app.settle(fail_fast=True)
        status = await app.message(message_id)
    assert status is not None and status.state == "done" and status.topic == "t"
    [done] = status.deliveries
    assert (done.step, done.state, done.attempts, done.result) == (
        "Double",
        "done",
        1,
        {"total": 42},
    )
    assert done.started_at is not None and done.finished_at is not None
    assert done.finished_at - done.started_at == pytest.approx(2, abs=0.01)
    assert done.enqueued_at is not None and done.enqueued_at <= done.started_at


async def test_fan_out_shows_each_delivery_with_its_own_outcome(autojump_clock: Any) -> None:
    async def ok(data: Any, ctx: Any) -> int:
        return 1

    async def broken(data: Any, ctx: Any) -> None:
        raise NonRetryable("bad order")

    steps = [event_step("Good", "t", ok), event_step("Bad", "t", broken)]
    async with open_test_runtime(steps) as app:
        message_id = await app.emit("t", {})
        await app.settle()
        status = await app.message(message_id)
    assert status is not None
    by_step = {d.step: d for d in status.deliveries}
    assert by_step["Good"].state == "done" and by_step["Good"].result == 1
    bad = by_step["Bad"]
    assert bad.state == "dead" and bad.dead_letter_id
    assert bad.error is not None and "bad order" in bad.error
    assert bad.traceback is not None and "broken" in bad.traceback
    assert status.state == "dead"  # every delivery is over; the least advanced one shows


async def test_retrying_shows_the_last_error_and_traceback(autojump_clock: Any) -> None:
    async def flaky(data: Any, ctx: Any) -> None:
        raise RuntimeError(f"attempt {ctx.message.attempt} failed")

    step = queue_step("Flaky", "t", flaky, maxRetries=3, retryDelay=60_000)
    async with open_test_runtime([step]) as app:
        message_id = await app.emit("t", {})
        await app.advance(1)
        status = await app.message(message_id)
        assert status is not None
        [retrying] = status.deliveries
        assert (retrying.state, retrying.attempts) == ("retrying", 1)
        assert retrying.error == "RuntimeError: attempt 1 failed"
        assert retrying.traceback is not None and "flaky" in retrying.traceback
        assert retrying.due_at is not None


async def test_a_settled_record_lasts_its_retention(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> str:
        return "ok"

    project = ProjectConfig(message_retention=600)
    async with open_test_runtime([event_step("S", "t", handler)], project=project) as app:
        message_id = await app.emit("t", {})
        await app.settle(fail_fast=True)
        await app.advance(599)
        assert await app.message(message_id) is not None
        await app.advance(2)
        assert await app.message(message_id) is None


async def test_retention_zero_keeps_no_records(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> str:
        return "ok"

    project = ProjectConfig(message_retention=0)
    async with open_test_runtime([event_step("S", "t", handler)], project=project) as app:
        message_id = await app.emit("t", {})
        await app.settle(fail_fast=True)
        assert await app.message(message_id) is None


async def test_a_large_result_is_capped_and_says_so(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> str:
        return "x" * 1000

    project = ProjectConfig(result_max_bytes=100)
    async with open_test_runtime([event_step("S", "t", handler)], project=project) as app:
        message_id = await app.emit("t", {})
        await app.settle(fail_fast=True)
        status = await app.message(message_id)
    assert status is not None
    [done] = status.deliveries
    assert done.state == "done" and done.result is None
    assert done.result_note is not None and "over the 100-byte cap" in done.result_note


@attrs.frozen
class Receipt:
    order: int


async def test_results_are_unstructured_and_non_json_is_noted(autojump_clock: Any) -> None:
    async def structured(data: Any, ctx: Any) -> Receipt:
        return Receipt(order=7)

    async def opaque(data: Any, ctx: Any) -> object:
        return object()

    steps = [event_step("A", "t", structured), event_step("B", "t", opaque)]
    async with open_test_runtime(steps) as app:
        message_id = await app.emit("t", {})
        await app.settle(fail_fast=True)
        status = await app.message(message_id)
    assert status is not None
    a, b = status.deliveries
    assert (a.state, a.result) == ("done", {"order": 7})
    assert b.state == "done" and b.result is None
    assert b.result_note is not None and "not JSON" in b.result_note


async def test_cancel_stops_a_running_handler_and_it_is_not_retried(autojump_clock: Any) -> None:
    started = trio.Event()
    finished: list[str] = []

    async def slow(data: Any, ctx: Any) -> None:
        started.set()
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            finished.append("cancelled")
            raise
        finished.append("ran to the end")

    step = queue_step("Slow", "t", slow, maxRetries=3)
    async with open_test_runtime([step]) as app:
        message_id = await app.emit("t", {})
        await started.wait()
        status = await app.message(message_id)
        assert status is not None and status.deliveries[0].state == "running"
        outcome = await app.cancel(message_id)
        assert outcome.cancelled == ("Slow@t",) and outcome.running == ("Slow@t",)
        await app.settle(fail_fast=True)
        await app.advance(120)  # no retry ever comes
        status = await app.message(message_id)
        assert await app.dead_letters() == []
    assert finished == ["cancelled"]
    assert status is not None
    [cancelled] = status.deliveries
    assert (cancelled.state, cancelled.attempts) == ("cancelled", 1)


async def test_cancel_a_queued_message_before_it_runs(autojump_clock: Any) -> None:
    gate = trio.Event()
    ran: list[int] = []

    async def one_at_a_time(data: Any, ctx: Any) -> None:
        ran.append(data["n"])
        await gate.wait()

    step = queue_step("Serial", "t", one_at_a_time, concurrency=1)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"n": 1})
        second = await app.emit("t", {"n": 2})
        third = await app.emit("t", {"n": 3})
        await trio.testing.wait_all_tasks_blocked()
        outcome = await app.cancel(second)
        assert outcome.cancelled == ("Serial@t",) and outcome.running == ()
        gate.set()
        await app.settle(fail_fast=True)
        status = await app.message(second)
        third_status = await app.message(third)
    assert ran == [1, 3]
    assert status is not None and status.state == "cancelled"
    assert third_status is not None and third_status.state == "done"


async def test_cancelling_twice_or_after_done_changes_nothing(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        return None

    async with open_test_runtime([event_step("S", "t", handler)]) as app:
        message_id = await app.emit("t", {})
        await app.settle(fail_fast=True)
        outcome = await app.cancel(message_id)
        assert outcome.found and not outcome.any and outcome.settled == ("S@t",)
        assert "already over" in outcome.describe(message_id)
        status = await app.message(message_id)
        assert status is not None and status.state == "done"
        unknown = await app.cancel("f" * 32)
        assert not unknown.found and "no message" in unknown.describe("f" * 32)


async def test_wrong_ids_are_refused_and_unknown_ids_are_none(autojump_clock: Any) -> None:
    async with open_test_runtime([event_step("S", "t", lambda d, c: None)]) as app:
        assert await app.message("0" * 32) is None
        for bad in ("", "has space", "x" * 201, 42, None):
            with pytest.raises(ValueError, match="message id"):
                await app.message(bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="message id"):
                await app.cancel(bad)  # type: ignore[arg-type]


async def test_a_handler_reads_a_status_through_ctx(autojump_clock: Any) -> None:
    seen: list[Any] = []

    async def first(data: Any, ctx: Any) -> None:
        seen.append(await ctx.message_status(ctx.message.id))

    def sync_handler(data: Any, ctx: Any) -> None:
        seen.append(ctx.message_status(ctx.message.id))

    steps = [event_step("A", "t", first), event_step("B", "u", sync_handler)]
    async with open_test_runtime(steps) as app:
        await app.emit("t", {})
        await app.emit("u", {})
        await app.settle(fail_fast=True)
    assert [s.deliveries[0].state for s in seen] == ["running", "running"]


async def test_another_instance_cancels_a_handler_running_here(autojump_clock: Any) -> None:
    started = trio.Event()
    stopped: list[bool] = []

    async def slow(data: Any, ctx: Any) -> None:
        started.set()
        try:
            await trio.sleep(3600)
        finally:
            stopped.append(True)

    async def unused(data: Any, ctx: Any) -> None:
        raise AssertionError("the other instance never runs it")

    backend = MemoryBackend()
    async with open_test_runtime([queue_step("Slow", "t", slow)], backend=backend) as here:
        message_id = await here.emit("t", {})
        await started.wait()
        async with open_test_runtime(
            [queue_step("Slow", "t", unused)], backend=backend
        ) as elsewhere:
            outcome = await elsewhere.cancel(message_id)
            assert outcome.running == ("Slow@t",)
            assert stopped == []  # not this instance's handler: its lease keeper learns it
            await here.advance(11)  # a third of the 30 s lease
            assert stopped == [True]
        status = await here.message(message_id)
        assert status is not None and status.state == "cancelled"


async def test_a_message_leased_ahead_and_cancelled_never_starts(autojump_clock: Any) -> None:
    gate = trio.Event()
    ran: list[int] = []

    async def fast_then_blocked(data: Any, ctx: Any) -> None:
        ran.append(data["n"])
        if data["n"] == 0:
            await gate.wait()

    # concurrency 1 with prefetch: the second message is leased while the first runs
    step = queue_step("Serial", "t", fast_then_blocked, concurrency=1, prefetch=1)
    async with open_test_runtime([step]) as app:
        for n in range(1, 4):  # fast handlers first, so the actor starts leasing ahead
            await app.emit("t", {"n": n})
        await app.settle(fail_fast=True)
        await app.emit("t", {"n": 0})
        ahead = await app.emit("t", {"n": 9})
        await trio.testing.wait_all_tasks_blocked()
        [actor] = app.runtime.actors
        held_ids = {d.envelope.id for d in actor.held.values()}
        outcome = await app.cancel(ahead)
        gate.set()
        await app.settle(fail_fast=True)
        status = await app.message(ahead)
    assert ahead in held_ids, "the test needs the message leased ahead"
    assert outcome.cancelled == ("Serial@t",)
    assert ran == [1, 2, 3, 0]
    assert status is not None and status.state == "cancelled"


# -- delayed, keyed and expired messages (the delay/expiry feature meets status) -----------

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_a_delayed_emit_reads_delayed_then_cancelled_and_never_runs(
    autojump_clock: Any,
) -> None:
    ran: list[Any] = []

    async def handler(data: Any, ctx: Any) -> None:
        ran.append(data)

    steps = [queue_step("Mail", "t", handler), queue_step("Audit", "t", handler)]
    async with open_test_runtime(steps, start=START) as app:
        message_id = await app.emit("t", {"n": 1}, delay=timedelta(hours=1), key="order-42")
        await app.advance(timedelta(minutes=30))
        await app.settle(fail_fast=True)
        status = await app.message(message_id)
        assert status is not None and status.state == "delayed" and status.topic == "t"
        assert [(d.step, d.state, d.attempts) for d in status.deliveries] == [
            ("Audit", "delayed", 0),
            ("Mail", "delayed", 0),
        ]
        due = (START + timedelta(hours=1)).timestamp()
        assert all(d.due_at == pytest.approx(due) for d in status.deliveries)
        outcome = await app.cancel(message_id)
        assert outcome.running == () and len(outcome.cancelled) == 2
        # The key stays taken: a repeat within the window answers the cancelled id.
        assert await app.emit("t", {"n": 2}, key="order-42") == message_id
        await app.advance(timedelta(hours=2))
        await app.settle(fail_fast=True)
        status = await app.message(message_id)
    assert ran == []
    assert status is not None and status.state == "cancelled"
    assert {d.state for d in status.deliveries} == {"cancelled"}


async def test_an_expired_message_reads_expired_then_done_after_a_redrive(
    autojump_clock: Any,
) -> None:
    async def slow(data: Any, ctx: Any) -> str:
        await trio.sleep(60)
        return data

    step = queue_step("Worker", "t", slow, concurrency=1)
    async with open_test_runtime([step], start=START) as app:
        await app.emit("t", "first")
        stale = await app.emit("t", "stale", expires=timedelta(seconds=30))
        await app.settle()
        status = await app.message(stale)
        assert status is not None and status.state == "expired"
        [expired] = status.deliveries
        assert expired.attempts == 0 and expired.dead_letter_id
        assert expired.error == "Expired: not started by 2026-01-05T09:00:30Z"
        assert not (await app.cancel(stale)).any  # over: nothing to cancel
        letters = await app.dead_letters("Worker")
        assert await app.redrive(letters) == 1
        await app.settle(fail_fast=True)
        status = await app.message(stale)
    assert status is not None and status.state == "done"
    assert status.deliveries[0].result == "stale"
