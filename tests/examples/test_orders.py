"""Seed 002: the greeting worker, the food order -> notification chain, the multi-trigger
ProcessOrder on a fifo queue, the periodic job and the cron batch processor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from motet.testing import TestRuntime

from ._app import at, fields_of, open_app, problem_errors


async def stock(app: TestRuntime, units: int) -> None:
    await app.state.set("inventory", "pet-food", {"units": units})


async def test_hello_enqueues_a_greeting_the_worker_stores(autojump_clock: Any) -> None:
    async with open_app("greetings") as app:
        r = await app.http.get("/hello", query={"name": "Pets"})
        assert r.status == 200 and r.json["message"] == "Hello Pets!"
        await app.settle(fail_fast=True)
        greeting = await app.state.get("greetings", r.json["requestId"])
        assert greeting == {
            "greeting": "Hello Pets!",
            "processedAt": "2026-01-05T07:00:00+00:00",
            "originalTimestamp": "2026-01-05T07:00:00+00:00",
        }
        assert app.log_messages("ProcessGreeting") == [
            "Processing greeting",
            "Greeting processed successfully",
        ]


async def test_a_malformed_greeting_is_dead_lettered_without_retries(autojump_clock: Any) -> None:
    async with open_app("greetings") as app:
        await app.emit(
            "process-greeting", {"timestamp": "now", "appName": "x", "greetingPrefix": 5}
        )
        await app.settle()
        [letter] = await app.dead_letters("ProcessGreeting")
        assert letter.attempts == 1
        assert "greetingPrefix" in letter.error and "requestId" in letter.error
        assert "Processing greeting" not in app.log_messages("ProcessGreeting")
        assert await app.state.list("greetings") == []


async def test_an_order_with_food_flows_to_a_masked_notification(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        await stock(app, 10)
        r = await app.http.post(
            "/orders",
            json={
                "pet": {"name": "Rex", "photoUrl": "https://example.com/rex.jpg"},
                "foodOrder": {"quantity": 3},
            },
        )
        assert r.status == 200 and r.json["name"] == "Rex"
        pet_id = r.json["id"]
        assert await app.state.get("catalog", pet_id) == r.json
        await app.settle(fail_fast=True)

        assert app.messages("process-food-order") == [
            {"quantity": 3, "email": "test@example.com", "petId": pet_id}
        ]
        [order] = await app.state.list("orders")
        assert order["petId"] == pet_id and order["status"] == "placed"
        assert await app.state.get("inventory", "pet-food") == {"units": 7}
        [notification] = app.messages("notification")
        assert notification["templateId"] == "new-order"
        assert notification["templateData"] == {
            "orderId": order["id"],
            "quantity": 3,
            "status": "placed",
        }
        [sent] = fields_of(app, "Notification", "Sending notification")
        assert sent == {"email": "te**@example.com", "templateId": "new-order"}


async def test_an_order_without_food_enqueues_nothing(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        r = await app.http.post("/orders", json={"pet": {"name": "Rex", "photoUrl": "u"}})
        assert r.status == 200
        await app.settle(fail_fast=True)
        assert app.messages("process-food-order") == []


async def test_create_order_rejects_bad_bodies(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        r = await app.http.post(
            "/orders",
            json={"pet": {"name": "Rex", "photoUrl": "u"}, "foodOrder": {"quantity": "2"}},
        )
        assert r.status == 400 and "$.body.foodOrder.quantity" in problem_errors(r)
        r = await app.http.post("/orders", json={"pet": {"name": "Rex"}})
        assert r.status == 400
        assert problem_errors(r) == {"$.body.pet.photoUrl": "required field missing"}
        r = await app.http.post("/orders", json={"pet": "Rex"})
        assert r.status == 400
        assert problem_errors(r)["$.body.pet"] == "expected an object, got string"
        assert await app.state.list("catalog") == []


async def test_food_order_out_of_stock_retries_then_is_redriven(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        await stock(app, 1)
        await app.emit("process-food-order", {"quantity": 5, "email": "a@b.c", "petId": "p1"})
        await app.settle()
        attempts = [
            r.attempt
            for r in app.logs_of("ProcessFoodOrder")
            if r.message == "Processing food order"
        ]
        assert attempts == [1, 2, 3, 4]  # default: 3 retries
        [letter] = await app.dead_letters("ProcessFoodOrder")
        assert "OutOfStock" in letter.error and letter.attempts == 4
        assert await app.state.get("inventory", "pet-food") == {"units": 1}  # nothing taken

        await stock(app, 20)
        assert await app.redrive([letter]) == 1
        await app.settle(fail_fast=True)
        assert await app.dead_letters("ProcessFoodOrder") == []
        assert len(await app.state.list("orders")) == 1
        assert await app.state.get("inventory", "pet-food") == {"units": 15}


async def test_process_order_over_http(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        await stock(app, 2)
        order = {"email": "jane@example.com", "quantity": 2, "petId": "p1"}
        r = await app.http.post("/process-order", json=order)
        assert r.status == 200 and r.json["success"] is True
        assert r.json["order"]["quantity"] == 2
        r = await app.http.post("/process-order", json=order)
        assert r.status == 409 and "2 units of pet-food ordered, 0 in stock" in r.json["error"]
        r = await app.http.post("/process-order", json={**order, "quantity": 0})
        assert r.status == 400 and "$.body" in r.text and "quantity" in r.text
        r = await app.http.post("/process-order", json={**order, "quantity": 1.5})
        assert r.status == 400 and "$.body.quantity" in problem_errors(r)

        await app.settle(fail_fast=True)
        [processing, *_] = fields_of(app, "ProcessOrder", "Processing order")
        assert processing["triggerType"] == "http"
        [sent] = fields_of(app, "Notification", "Sending notification")
        assert sent == {"email": "ja**@example.com", "templateId": "order-processed"}


async def test_process_order_queue_keeps_each_group_in_order_across_retries(
    autojump_clock: Any,
) -> None:
    async with open_app("food_orders") as app:
        await stock(app, 3)
        await app.emit(
            "process-order", {"email": "a@x.io", "quantity": 5, "petId": "alice-1"}, group="alice"
        )
        await app.emit(
            "process-order", {"email": "a@x.io", "quantity": 1, "petId": "alice-2"}, group="alice"
        )
        await app.emit(
            "process-order", {"email": "b@x.io", "quantity": 1, "petId": "bob-1"}, group="bob"
        )
        await app.advance(0.5)  # alice-1 failed (5 > 3) and waits 1 s for its retry
        await stock(app, 10)
        await app.settle(fail_fast=False)

        done = [n["templateData"]["orderId"] for n in app.messages("notification")]
        orders = {o["id"]: o["petId"] for o in await app.state.list("orders")}
        # bob is not held up by alice's retry; alice-2 never overtakes alice-1
        assert [orders[i] for i in done] == ["bob-1", "alice-1", "alice-2"]
        tries = [
            (r.fields["petId"], at(app, r.time).strftime("%S.%f"), r.attempt)
            for r in app.logs_of("ProcessOrder")
            if r.message == "Processing order"
        ]
        assert sorted(tries) == [
            ("alice-1", "00.000000", 1),
            ("alice-1", "01.000000", 2),
            ("alice-2", "01.000000", 1),
            ("bob-1", "00.000000", 1),
        ]
        assert [t[0] for t in tries if t[0].startswith("alice")] == [
            "alice-1",
            "alice-1",
            "alice-2",
        ]
        assert await app.state.get("inventory", "pet-food") == {"units": 4}


async def test_a_group_moves_on_once_a_message_is_dead_lettered(autojump_clock: Any) -> None:
    async with open_app("food_orders") as app:
        await stock(app, 3)
        await app.emit(
            "process-order", {"email": "a@x.io", "quantity": 50, "petId": "big"}, group="alice"
        )
        await app.emit(
            "process-order", {"email": "a@x.io", "quantity": 1, "petId": "small"}, group="alice"
        )
        await app.settle()
        tries = [f["petId"] for f in fields_of(app, "ProcessOrder", "Processing order")]
        assert tries == ["big"] * 4 + ["small"]  # fifo: 3 retries (motet.toml), then the next
        [letter] = await app.dead_letters("ProcessOrder")
        assert letter.envelope.data["petId"] == "big"


async def test_the_periodic_job_runs_every_minute(autojump_clock: Any) -> None:
    async with open_app("scheduled") as app:
        await app.advance(timedelta(minutes=5, seconds=30))
        await app.settle(fail_fast=True)
        stamps = [m["timestamp"] for m in app.messages("periodic-job-handled")]
        # Whether the tick at the start instant (07:00) fires is the runtime's missed-tick
        # policy, tested with the runtime; here: every minute after the start, once.
        after_start = [s for s in stamps if s > "2026-01-05T07:00:00+00:00"]
        assert after_start == [f"2026-01-05T07:0{m}:00+00:00" for m in range(1, 6)]
        assert app.log_messages("HandlePeriodicJob") == ["Periodic job executed"] * len(stamps)


async def test_the_batch_processor_enqueues_pending_items_every_6_hours(
    autojump_clock: Any,
) -> None:
    # Without the every-minute HandlePeriodicJob, 12 virtual hours take less real time.
    async with open_app("scheduled", only={"BatchProcessor", "ProcessItem"}) as app:
        # Monday 07:00: the next batch is at 12:00
        await app.state.set("pending-items", "a", {"id": "a", "value": 21})
        await app.state.set("pending-items", "b", {"id": "b", "value": -1})
        await app.run_until(datetime(2026, 1, 5, 11, 59, tzinfo=UTC))
        assert app.messages("process-item") == []
        await app.run_until(datetime(2026, 1, 5, 12, 30, tzinfo=UTC))
        assert app.messages("process-item") == [{"id": "a", "value": 21}, {"id": "b", "value": -1}]
        done = await app.state.get("jobs", "a")
        assert done["status"] == "completed" and done["result"] == 42
        assert await app.state.get("pending-items", "a") is None

        # b fails every attempt: 1 + 2 retries (set on its queue trigger), 1 s then 2 s apart
        failing = [r for r in app.logs_of("ProcessItem") if r.message == "Job processing failed"]
        assert [r.attempt for r in failing] == [1, 2, 3]
        assert [at(app, r.time).strftime("%H:%M:%S") for r in failing] == [
            "12:00:00",
            "12:00:01",
            "12:00:03",
        ]
        [letter] = await app.dead_letters("ProcessItem")
        assert "negative values cannot be processed" in letter.error
        assert (await app.state.get("jobs", "b"))["status"] == "failed"
        assert await app.state.get("pending-items", "b") is not None  # for the next batch

        await app.run_until(datetime(2026, 1, 5, 18, 30, tzinfo=UTC))
        assert [m["id"] for m in app.messages("process-item")] == ["a", "b", "b"]
        batches = fields_of(app, "BatchProcessor", "Batch enqueued successfully")
        assert batches == [{"count": 2}, {"count": 1}]
