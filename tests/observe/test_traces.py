"""Traces: an HTTP request, the messages that follow from it and every handler run join one
trace; parents follow who emitted what; cron ticks and dead-letter hand-offs too."""

from __future__ import annotations

from typing import Any

from motet.observe import Span, SpanQuery, waterfall
from motet.observe._records import Emitted, StateWriteInfo
from motet.steps import load_step

from ._app import http_step, open_observed, queue_step


def pipeline(fail_ship_once: bool = False) -> list[Any]:
    shipped: list[int] = []

    async def ingest(request: Any, ctx: Any) -> Any:
        ctx.logger.info("order received", order=request.body["order"])
        await ctx.state.set("orders", str(request.body["order"]), {"status": "new"})
        await ctx.emit("order.placed", {"order": request.body["order"]})
        return {"status": 202, "body": {"ok": True}}

    def charge(data: Any, ctx: Any) -> None:  # a plain def: runs in a worker thread
        ctx.logger.info("charging", order=data["order"])
        ctx.state.set("orders", str(data["order"]), {"status": "charged"})
        ctx.emit("order.charged", data)

    async def ship(data: Any, ctx: Any) -> None:
        ctx.logger.info("shipping", order=data["order"])
        if fail_ship_once and not shipped:
            shipped.append(1)
            raise RuntimeError("carrier down")

    return [
        http_step("Ingest", "POST", "/orders", ingest, enqueues=["order.placed"]),
        queue_step("Charge", "order.placed", charge, enqueues=["order.charged"]),
        queue_step("Ship", "order.charged", ship, options={"maxRetries": 2, "retryDelay": 100}),
    ]


async def test_http_queue_queue_is_one_trace_with_parents_in_order(autojump_clock: Any) -> None:
    async with open_observed(pipeline()) as app:
        response = await app.http.post("/orders", json={"order": 7})
        assert response.status_code == 202
        trace_id = response.headers["x-trace-id"]
        await app.settle()
        rows, logs = await app.telemetry.trace(trace_id)
    names = [(r.span.kind, r.span.name, r.depth) for r in rows]
    assert names == [
        ("http", "POST /orders", 0),
        ("handler", "Ingest", 1),
        ("handler", "Charge", 2),
        ("handler", "Ship", 3),
    ]
    by_name = {r.span.name: r for r in rows}
    assert by_name["Ingest"].parent_id == by_name["POST /orders"].span.span_id
    assert by_name["Charge"].parent_id == by_name["Ingest"].span.span_id
    assert by_name["Ship"].parent_id == by_name["Charge"].span.span_id
    assert {r.span.trace_id for r in rows} == {trace_id}
    ingest, charge = by_name["Ingest"].span, by_name["Charge"].span
    assert [e.topic for e in ingest.emitted] == ["order.placed"]
    assert ingest.state_writes == (StateWriteInfo("orders", "7", "created"),)
    # The sync handler's emit and state write (made through from_thread) are its own.
    assert [e.topic for e in charge.emitted] == ["order.charged"]
    assert charge.state_writes == (StateWriteInfo("orders", "7", "updated"),)
    assert charge.message_id == ingest.emitted[0].id and charge.topic == "order.placed"
    assert by_name["POST /orders"].span.status == 202
    starts = [r.span.started for r in rows]
    assert starts == sorted(starts)
    assert [line.message for line in logs] == ["order received", "charging", "shipping"]
    assert [line.step for line in logs] == ["Ingest", "Charge", "Ship"]


async def test_every_attempt_is_a_span_under_the_emitter(autojump_clock: Any) -> None:
    async with open_observed(pipeline(fail_ship_once=True)) as app:
        trace_id = (await app.http.post("/orders", json={"order": 1})).headers["x-trace-id"]
        await app.settle()
        rows, _ = await app.telemetry.trace(trace_id)
    ships = [r for r in rows if r.span.name == "Ship"]
    charge = next(r for r in rows if r.span.name == "Charge")
    assert [(r.span.attempt, r.span.outcome) for r in ships] == [(1, "error"), (2, "ok")]
    assert {r.parent_id for r in ships} == {charge.span.span_id}
    assert ships[0].span.error == "RuntimeError: carrier down"


async def test_a_cron_tick_starts_a_trace_its_messages_join(autojump_clock: Any) -> None:
    async def tick(ctx: Any) -> None:
        await ctx.emit("tick.done", {"at": ctx.now().isoformat()})

    async def after(data: Any, ctx: Any) -> None:
        ctx.logger.info("after tick")

    steps = [
        load_step(
            {
                "name": "Ticker",
                "triggers": [{"type": "cron", "expression": "*/5 * * * *"}],
                "enqueues": ["tick.done"],
            },
            tick,
        ),
        queue_step("After", "tick.done", after),
    ]
    async with open_observed(steps) as app:
        await app.runtime.clock.sleep_until(app.runtime.clock.now() + 301)
        await app.settle()
        spans = await app.telemetry.spans(SpanQuery(step="Ticker"))
        # 00:00 (the start, within grace) and 00:05: each tick is its own trace.
        assert [s.trigger for s in spans] == ["cron", "cron"]
        assert spans[0].trace_id != spans[1].trace_id
        rows, _ = await app.telemetry.trace(spans[1].trace_id)
    assert [(r.span.name, r.depth) for r in rows] == [("Ticker", 0), ("After", 1)]


async def test_a_dead_letter_queue_hand_off_joins_the_trace(autojump_clock: Any) -> None:
    async def broken(data: Any, ctx: Any) -> None:
        raise ValueError("bad data")

    async def record(data: Any, ctx: Any) -> None:
        ctx.logger.warn("recorded failure", error=data["error"])

    steps = [
        queue_step(
            "Broken", "work", broken, options={"maxRetries": 0, "dead_letter_queue": "work.failed"}
        ),
        queue_step("Record", "work.failed", record),
    ]
    async with open_observed(steps) as app:
        assert app.runtime.publisher is not None
        await app.runtime.publisher.publish("work", {"n": 1}, trace_id="f" * 32, source="test")
        await app.settle()
        rows, _ = await app.telemetry.trace("f" * 32)
    kinds = [(r.span.kind, r.span.name, r.depth) for r in rows]
    assert kinds == [
        ("emit", "emit work", 0),
        ("handler", "Broken", 1),
        ("emit", "emit work.failed", 2),
        ("handler", "Record", 3),
    ]


def test_waterfall_links_state_triggers_to_the_writer_and_survives_cycles() -> None:
    writer = Span(
        "w",
        "t",
        "handler",
        "Writer",
        10.0,
        1.0,
        step="Writer",
        trigger="queue",
        message_id="m0",
        state_writes=(StateWriteInfo("ns", "k", "created"),),
    )
    watcher = Span(
        "s",
        "t",
        "handler",
        "Watcher",
        10.5,
        0.1,
        step="Watcher",
        trigger="state",
        topic="state:ns",
        message_id="unknown",
    )
    # Two spans that claim each other's messages: corrupt, but shown once each.
    a = Span("a", "t", "handler", "A", 1.0, 1.0, message_id="mb", emitted=(Emitted("x", "ma"),))
    b = Span("b", "t", "handler", "B", 2.0, 1.0, message_id="ma", emitted=(Emitted("x", "mb"),))
    rows = waterfall([watcher, writer, a, b])
    parents = {r.span.span_id: r.parent_id for r in rows}
    assert parents["s"] == "w" and parents["w"] is None
    assert sorted(r.span.span_id for r in rows) == ["a", "b", "s", "w"]
