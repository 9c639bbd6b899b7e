"""`condition=` on every trigger type, with the state trigger's semantics: Motia's
`condition(input)` or `condition(input, ctx)`, sync or async; raising is a failed attempt.
False means: queue -> the message is acked unhandled; cron -> the tick is skipped; http ->
404 (the step does not handle the request)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from motet import cron, http, queue, state
from motet._errors import StepDefinitionError
from motet.steps import load_step
from motet.testing import open_test_runtime


async def test_a_false_queue_condition_acks_without_running_the_handler(
    autojump_clock: Any,
) -> None:
    handled: list[int] = []
    seen_ctx: list[str] = []

    def big(order: Any, ctx: Any) -> bool:  # Motia's two-argument form, a plain def
        seen_ctx.append(ctx.trigger.type)
        return bool(order["amount"] > 100)

    async def handler(order: Any, ctx: Any) -> None:
        handled.append(order["amount"])

    step = load_step({"name": "Big", "triggers": [queue("orders", condition=big)]}, handler)
    async with open_test_runtime([step]) as app:
        for amount in (50, 500, 101, 100):
            await app.emit("orders", {"amount": amount})
        await app.settle(fail_fast=True)
        letters = await app.dead_letters()
        depth = await app.runtime.backend.depth()
    assert sorted(handled) == [101, 500]
    assert seen_ctx == ["queue"] * 4
    assert letters == [] and all(d.pending == 0 for d in depth.values())


async def test_an_async_one_argument_condition(autojump_clock: Any) -> None:
    handled: list[Any] = []

    async def even(data: Any) -> bool:
        return bool(data["n"] % 2 == 0)

    step = load_step(
        {"name": "Even", "triggers": [{"type": "queue", "topic": "n", "condition": even}]},
        lambda data, ctx: handled.append(data["n"]),
    )
    async with open_test_runtime([step]) as app:
        for n in range(5):
            await app.emit("n", {"n": n})
        await app.settle(fail_fast=True)
    assert sorted(handled) == [0, 2, 4]


async def test_a_raising_queue_condition_is_a_failed_attempt(autojump_clock: Any) -> None:
    calls: list[int] = []

    def broken(data: Any) -> bool:
        calls.append(1)
        raise KeyError("amount")

    step = load_step(
        {"name": "Broken", "triggers": [queue("t", condition=broken, max_retries=1)]},
        lambda data, ctx: None,
    )
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        (letter,) = await app.dead_letters("Broken")
        lines = app.log_messages("Broken")
    assert len(calls) == 2 and letter.error == "KeyError: 'amount'"
    assert "queue trigger condition failed; will retry" in lines


async def test_a_cron_condition_gets_none_and_skips_ticks(autojump_clock: Any) -> None:
    inputs: list[Any] = []
    ran: list[str] = []

    def weekdays(input: Any, ctx: Any) -> bool:
        inputs.append(input)
        scheduled = datetime.fromisoformat(ctx.tick["scheduled"])
        return scheduled.weekday() < 5

    async def handler(input: Any, ctx: Any) -> None:
        ran.append(ctx.tick["scheduled"][:10])

    step = load_step(
        {"name": "Daily", "triggers": [cron("0 8 * * *", condition=weekdays)]}, handler
    )
    # 2026-01-02 is a Friday: Fri, (Sat, Sun skipped), Mon
    async with open_test_runtime([step], start=datetime(2026, 1, 2, tzinfo=UTC)) as app:
        await app.advance(timedelta(days=4))
        await app.settle(fail_fast=True)
    assert inputs == [None] * 4
    assert ran == ["2026-01-02", "2026-01-05"]


async def test_a_false_http_condition_is_a_404_and_the_handler_does_not_run(
    autojump_clock: Any,
) -> None:
    handled: list[Any] = []

    def premium(req: Any, ctx: Any) -> bool:
        return bool((req.body or {}).get("amount", 0) > 1000)

    async def handler(req: Any, ctx: Any) -> Any:
        handled.append(req.body)
        return {"status": 200, "body": {"ok": True}}

    step = load_step(
        {"name": "Premium", "triggers": [http("POST", "/orders", condition=premium)]}, handler
    )
    async with open_test_runtime([step]) as app:
        small = await app.http.post("/orders", json={"amount": 5})
        big = await app.http.post("/orders", json={"amount": 5000})
    assert small.status == 404
    assert small.json["type"] == "urn:motet:problem:not-found"
    assert small.json["detail"] == "the condition of step 'Premium' declined POST /orders"
    assert big.status == 200 and handled == [{"amount": 5000}]


async def test_a_raising_http_condition_is_a_500_problem(autojump_clock: Any) -> None:
    def broken(req: Any) -> bool:
        raise RuntimeError("no")

    step = load_step(
        {"name": "B", "triggers": [http("GET", "/b", condition=broken)]},
        lambda req, ctx: {"status": 200},
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.get("/b")
    assert response.status == 500 and "error_id" in response.json


async def test_state_conditions_still_work(autojump_clock: Any) -> None:
    seen: list[Any] = []

    step = load_step(
        {
            "name": "Done",
            "triggers": [
                state("jobs", condition=lambda e: (e["value"] or {}).get("status") == "done")
            ],
        },
        lambda event, ctx: seen.append(event["key"]),
    )
    async with open_test_runtime([step]) as app:
        await app.state.set("jobs", "a", {"status": "running"})
        await app.state.set("jobs", "b", {"status": "done"})
        await app.settle(fail_fast=True)
    assert seen == ["b"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"type": "queue", "topic": "t", "condition": "amount > 5"}, "expected a function"),
        ({"type": "http", "method": "GET", "path": "/x", "condition": 3}, "expected a function"),
        (
            {"type": "cron", "expression": "* * * * *", "condition": lambda a, b, c: True},
            r"condition\(input\) or condition\(input, ctx\)",
        ),
    ],
)
def test_a_bad_condition_fails_the_load(trigger: Any, message: str) -> None:
    with pytest.raises(StepDefinitionError, match=message) as caught:
        load_step({"name": "Bad", "triggers": [trigger]}, lambda *a: None)
    assert caught.value.field == "triggers[0].condition"
