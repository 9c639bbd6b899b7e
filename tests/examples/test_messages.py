"""The message pipeline (seed 003): validation, processing with the queue options of
motet.toml, retries counted exactly, the dead letter queue, the state trigger and cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from motet.testing import TestRuntime

from ._app import at, fields_of, open_app, problem_errors

JAN_1 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


async def send(app: TestRuntime, **body: Any) -> str:
    r = await app.http.post("/messages", json=body)
    assert r.status == 200, r.text
    assert r.json["status"] == "enqueued"
    message_id: str = r.json["messageId"]
    return message_id


async def test_a_message_is_processed_and_its_completion_notified(autojump_clock: Any) -> None:
    async with open_app("messages") as app:
        message_id = await send(
            app,
            text="Process this message",
            priority="high",
            metadata={"source": "api", "userId": "user-123"},
        )
        pending = await app.state.get("messages", message_id)
        assert pending["status"] == "pending" and pending["metadata"]["userId"] == "user-123"

        await app.settle(fail_fast=True)
        done = await app.state.get("messages", message_id)
        assert done["status"] == "processed"
        assert done["processedText"] == "PROCESS THIS MESSAGE"
        assert done["processingTime"] == 100  # high priority
        assert done["processedAt"] == "2026-01-05T07:00:00.100000+00:00"
        assert app.messages("message.processed") == [
            {"messageId": message_id, "processedText": "PROCESS THIS MESSAGE"}
        ]

        # The state trigger fired once: on "processed", not on "pending".
        [completed] = fields_of(app, "NotifyCompletion", "Message completed")
        assert completed["messageId"] == message_id
        [notification] = fields_of(app, "NotifyCompletion", "Notification sent")
        assert notification == {
            "type": "message_completed",
            "messageId": message_id,
            "completedAt": done["processedAt"],
        }


async def test_priority_defaults_to_normal_and_sets_the_work_time(autojump_clock: Any) -> None:
    async with open_app("messages") as app:
        normal = await send(app, text="x")
        low = await send(app, text="y" * 500, priority="low")
        await app.settle(fail_fast=True)
        assert (await app.state.get("messages", normal))["priority"] == "normal"
        assert (await app.state.get("messages", normal))["processingTime"] == 500
        assert (await app.state.get("messages", low))["processingTime"] == 1000


async def test_send_message_rejects_bad_bodies(autojump_clock: Any) -> None:
    async with open_app("messages") as app:
        r = await app.http.post("/messages", json={"text": ""})
        assert r.status == 400 and "must be >= 1" in r.text
        r = await app.http.post("/messages", json={"text": "x" * 501})
        assert r.status == 400 and "must be <= 500" in r.text
        r = await app.http.post("/messages", json={"text": "hi", "priority": "urgent"})
        assert r.status == 400
        assert problem_errors(r)["$.body.priority"] == "must be one of ['low', 'normal', 'high']"
        r = await app.http.post("/messages", json={"text": 42})
        assert r.status == 400 and "$.body.text" in problem_errors(r)
        r = await app.http.post("/messages", json={"priority": "low"})
        assert r.status == 400
        assert problem_errors(r) == {"$.body.text": "required field missing"}
        r = await app.http.post("/messages", json={"text": "hi", "metadata": {"n": 1}})
        assert r.status == 400 and "$.body.metadata['n']" in problem_errors(r)
        r = await app.http.post(
            "/messages",
            data="text=hi",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status == 415

        await app.settle(fail_fast=True)
        assert app.messages("message.sent") == []
        assert await app.state.list("messages") == []


async def test_a_failing_message_is_retried_then_dead_lettered(autojump_clock: Any) -> None:
    async with open_app("messages") as app:
        start = app.now()
        message_id = await send(app, text="this will fail")
        await app.settle()

        attempts = [r for r in app.logs_of("ProcessMessage") if r.message == "Processing message"]
        assert [r.attempt for r in attempts] == [1, 2, 3, 4]  # 1 + max_retries (motet.toml)
        # retry_delay 5000 ms, doubling: 5 s, 10 s, 20 s after each failure
        offsets = [(at(app, r.time) - start).total_seconds() for r in attempts]
        assert offsets == [0, 5, 15, 35]
        assert len(app.failures) == 4

        [letter] = app.messages("message.failed")
        assert letter["step"] == "ProcessMessage" and letter["attempts"] == 4
        assert letter["data"] == {
            "messageId": message_id,
            "text": "this will fail",
            "priority": "normal",
        }
        assert "cannot process text" in letter["error"]

        failure = await app.state.get("message-failures", message_id)
        assert failure["attempts"] == 4 and failure["failedStep"] == "ProcessMessage"
        stored = await app.state.get("messages", message_id)
        assert stored["status"] == "dead-lettered"
        assert "cannot process text" in stored["error"]
        # announced on the dead letter queue topic and kept in the store, to re-drive
        [stored] = await app.dead_letters("ProcessMessage")
        assert letter["dead_letter_id"] == stored.id and letter["traceback"] == stored.traceback
        assert "cannot process text" in stored.traceback
        assert fields_of(app, "NotifyCompletion", "Message completed") == []


async def test_five_messages_are_processed_at_once(autojump_clock: Any) -> None:
    async with open_app("messages") as app:
        start = app.now()
        ids = [await send(app, text=f"message {i}", priority="low") for i in range(10)]
        await app.settle(fail_fast=True)
        finished = sorted(
            [
                datetime.fromisoformat((await app.state.get("messages", i))["processedAt"])
                for i in ids
            ]
        )
        # concurrency 5 (motet.toml), 1 s of work each: two waves
        assert [(t - start).total_seconds() for t in finished] == [1.0] * 5 + [2.0] * 5


async def test_cleanup_deletes_processed_messages_older_than_30_days(autojump_clock: Any) -> None:
    async with open_app("messages", start=JAN_1) as app:
        old = await send(app, text="old and processed")
        failed = await send(app, text="old but failed")
        await app.settle()
        await app.advance(timedelta(days=20))
        recent = await send(app, text="recent")
        await app.settle(fail_fast=True)

        await app.run_until(datetime(2026, 1, 30, 3, 0, tzinfo=UTC))
        assert await app.state.get("messages", old) is not None  # 29 days old at 02:00
        await app.run_until(datetime(2026, 1, 31, 3, 0, tzinfo=UTC))
        assert await app.state.get("messages", old) is None
        assert await app.state.get("messages", failed) is not None  # not processed
        assert await app.state.get("messages", recent) is not None

        runs = fields_of(app, "CleanupMessages", "Cleanup completed")
        assert len(runs) == 31  # Jan 1 .. Jan 31 at 02:00
        assert runs[-1] == {"totalMessages": 3, "deletedCount": 1}
        assert sum(r["deletedCount"] for r in runs) == 1
