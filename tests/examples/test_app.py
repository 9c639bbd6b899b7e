"""The example app as a whole: it loads, uses both config forms, its topics are wired, its
motet.toml applies, and a morning of traffic runs through every example without failures."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from click.testing import CliRunner

from motet.backends import backend_from_url
from motet.cli import main
from motet.project import load_project
from motet.steps import QueueTrigger, StateTrigger, step_module_name
from motet.testing import open_test_runtime

from ._app import REPO_ROOT, STEPS_DIR, all_steps, example_steps, open_app

# Emitted for whoever wants to listen; nothing in the example app does.
SINK_TOPICS = {
    "message.processed",
    "periodic-job-handled",
    "file.processed",
    "notification.send",
    "email.sent",
    "video.progress",
    "video.completed",
    "batch.completed",
    "cleanup.completed",
    "metrics.collected",
    "order.cancelled",
    "report.generated",
}
# Published from outside the app (other services, `motet emit`, tests).
EXTERNAL_TOPICS = {"user.registered", "batch.process", "process-order", "report.requested"}


def _config(step_file: Any) -> Any:
    return sys.modules[step_module_name(STEPS_DIR, step_file)].config


def test_every_example_loads_with_unique_names() -> None:
    steps = all_steps()
    names = [s.name for s in steps]
    assert len(names) == len(set(names)) == 49


def test_both_config_forms_and_both_trigger_spellings_are_used() -> None:
    configs = [_config(s.file) for s in all_steps()]
    v0 = [c for c in configs if "type" in c]
    v1 = [c for c in configs if "triggers" in c]
    assert len(v0) + len(v1) == len(configs)
    assert {c["type"] for c in v0} == {"api", "event", "cron", "noop"}
    triggers = [t for c in v1 for t in c["triggers"]]
    assert {t["type"] for t in triggers if isinstance(t, dict)} == {
        "http",
        "queue",
        "cron",
        "state",
    }
    assert {t.type for t in triggers if not isinstance(t, dict)} == {"http", "queue", "cron"}


def test_every_topic_has_a_producer_and_a_consumer() -> None:
    steps = all_steps()
    emitted = {topic for s in steps for topic in s.enqueues}
    subscribed = {t.topic for s in steps for t in s.of_type(QueueTrigger)}
    dead_letter_topics = {"message.failed"}  # motet.toml publishes there
    assert emitted - subscribed == SINK_TOPICS
    assert subscribed - emitted == EXTERNAL_TOPICS | dead_letter_topics
    namespaces = {t.namespace for s in steps for t in s.of_type(StateTrigger)}
    assert namespaces == {"messages"}
    # The noop steps in steps/outside/ say so, which keeps the start-time checks quiet.
    assert {t for s in steps for t in s.virtual_emits} == EXTERNAL_TOPICS
    assert {t for s in steps for t in s.virtual_subscribes} == SINK_TOPICS


def test_the_example_app_starts_without_a_warning() -> None:
    result = CliRunner().invoke(main, ["--project", str(REPO_ROOT), "steps", "--strict"])
    assert result.exit_code == 0, result.output


async def test_motet_toml_queue_settings_apply(autojump_clock: Any) -> None:
    async with open_app() as app:
        subs = {s.key: s.options for s in app.runtime.subscriptions}
        sent = subs["ProcessMessage@message.sent"]
        assert (sent.max_retries, sent.retry_delay, sent.concurrency, sent.dead_letter_queue) == (
            3,
            5000,
            5,
            "message.failed",
        )
        order = subs["ProcessOrder@process-order"]
        assert (order.strategy, order.max_retries, order.retry_delay) == ("fifo", 3, 1000)
        job = subs["RunPriorityJob@job.queued"]
        assert (job.strategy, job.concurrency) == ("priority", 1)
        item = subs["ProcessItem@process-item"]  # set on the trigger itself
        assert (item.max_retries, item.retry_delay) == (2, 1000)


async def test_a_morning_of_traffic_through_the_whole_app(autojump_clock: Any) -> None:
    async with open_app() as app:  # Monday 2026-01-05, 07:00 UTC
        http = app.http
        pet = (await http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": 3})).json
        assert (await http.post("/messages", json={"text": "hello"})).status == 200
        assert (await http.get("/hello")).status == 200
        assert (
            await http.post("/orders", json={"pet": {"name": "Tom", "photoUrl": "u"}})
        ).status == 200
        assert (await http.put("/inventory/kibble", json={"units": 3, "price": 100})).status == 200
        assert (
            await http.post(
                "/checkout",
                json={
                    "email": "a@b.c",
                    "items": [{"sku": "kibble", "quantity": 1}],
                    "cardToken": "tok_visa",
                },
            )
        ).status == 202
        video = (await http.post("/videos", json={"filename": "v.mp4"})).json
        assert (await http.post("/upload", json={"filename": "a.txt"})).status == 202
        assert (await http.post("/jobs", json={"name": "report"})).status == 202
        assert (await http.post("/events", json={"event": "login"})).status == 202

        r = await http.get("/no/such/route")
        assert r.status == 404 and r.headers["content-type"].startswith("application/problem")
        assert (await http.patch("/pets")).status == 405

        await app.run_until(datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
        await app.settle(fail_fast=True)
        assert app.failures == []
        assert await app.dead_letters() == []
        assert "Daily feeding reminder sent" in app.log_messages("DailyFeedingReminder")
        assert "Weekly grooming reminder sent" in app.log_messages("WeeklyGroomingReminder")
        assert app.log_messages("MonthlyVetReminder") == []  # not the 1st
        assert (await http.get(f"/pets/{pet['id']}")).json["nextFeedingAt"]
        assert (await http.get(f"/jobs/{video['videoId']}")).json["status"] == "completed"
        [order] = await app.state.list("checkout-orders")
        assert order["status"] == "confirmed"
        assert len(app.messages("periodic-job-handled")) >= 150  # every minute, 07:01-09:30


async def test_the_app_runs_on_the_default_sqlite_backend(tmp_path: Path) -> None:
    # Real trio time here: the SQLite backend waits on its writer thread, which an
    # autojump clock would take for idleness. Only fast paths (~0.2 s) are exercised.
    backend = backend_from_url(f"sqlite:///{tmp_path}/motet.db", root=tmp_path)
    async with open_test_runtime(
        example_steps("pet_store", "messages", "checkout"),
        backend=backend,
        project=load_project(REPO_ROOT),
    ) as app:
        pet = (await app.http.post("/pets", json={"name": "Rex", "breed": "Cat", "age": 2})).json
        r = await app.http.post("/messages", json={"text": "hi", "priority": "high"})
        message_id = r.json["messageId"]
        await app.http.put("/inventory/kibble", json={"units": 3, "price": 100})
        await app.http.post(
            "/checkout",
            json={
                "email": "a@b.c",
                "cardToken": "tok",
                "items": [{"sku": "kibble", "quantity": 2}],
            },
        )
        # Regression: settle() used to wait out its 30 s safety poll here, because acks and
        # buries flushed by SQLite's writer thread woke nobody. A generous guard, not a timing.
        with trio.fail_after(60):
            await app.settle(fail_fast=True)
        assert "nextFeedingAt" in await app.state.get("pets", pet["id"])
        assert (await app.state.get("messages", message_id))["status"] == "processed"
        assert [o["status"] for o in await app.state.list("checkout-orders")] == ["confirmed"]
        assert await app.state.get("inventory", "kibble") == {"units": 1, "price": 100}
