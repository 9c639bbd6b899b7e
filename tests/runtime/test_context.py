"""The handler context through the runtime: emit, state, traces, triggers, sync handlers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from motet import UndeclaredTopicError, cron, http, queue, state
from motet.backends import MemoryBackend
from motet.steps import load_step
from motet.testing import open_test_runtime


async def test_trace_id_follows_http_to_queue_to_queue(autojump_clock: Any) -> None:
    seen: dict[str, str] = {}

    async def api(request: Any, ctx: Any) -> Any:
        seen["api"] = ctx.trace_id
        await ctx.emit("first", {"n": 1})
        return {"status": 202, "body": {"ok": True}}

    async def first(data: Any, ctx: Any) -> None:
        seen["first"] = ctx.trace_id
        ctx.logger.info("first ran")
        await ctx.emit({"topic": "second", "data": data})

    async def second(data: Any, ctx: Any) -> None:
        seen["second"] = ctx.trace_id
        ctx.logger.info("second ran", n=data["n"])

    steps = [
        load_step({"name": "Api", "triggers": [http("POST", "/go")], "enqueues": ["first"]}, api),
        load_step({"name": "First", "triggers": [queue("first")], "enqueues": ["second"]}, first),
        load_step({"name": "Second", "triggers": [queue("second")]}, second),
    ]
    async with open_test_runtime(steps) as app:
        response = await app.http.post("/go", json={})
        await app.settle(fail_fast=True)
        logs = {r.step: r for r in app.logs if r.message.endswith("ran")}
    trace = response.headers["x-trace-id"]
    assert response.status == 202
    assert seen == {"api": trace, "first": trace, "second": trace}
    assert logs["Second"].trace_id == trace and logs["Second"].fields == {"n": 1}
    assert logs["Second"].message_id == app.envelopes("second")[0].id
    assert logs["Second"].attempt == 1


async def test_emitting_an_undeclared_topic_fails_at_the_call(autojump_clock: Any) -> None:
    errors: list[BaseException] = []

    async def sneaky(data: Any, ctx: Any) -> None:
        try:
            await ctx.emit("not.declared", {})
        except UndeclaredTopicError as exc:
            errors.append(exc)

    step = load_step(
        {"name": "Sneaky", "triggers": [queue("in")], "enqueues": ["declared"]}, sneaky
    )
    async with open_test_runtime([step]) as app:
        await app.emit("in", {})
        await app.settle(fail_fast=True)
        assert app.messages("not.declared") == []
    [error] = errors
    assert "'Sneaky'" in str(error) and "'not.declared'" in str(error)
    assert "'declared'" in str(error)


async def test_emit_refuses_data_that_is_not_json(autojump_clock: Any) -> None:
    async def bad(data: Any, ctx: Any) -> None:
        await ctx.emit("out", {"when": object()})

    step = load_step(
        {"name": "Bad", "triggers": [queue("in", max_retries=0)], "enqueues": ["out"]}, bad
    )
    async with open_test_runtime([step]) as app:
        await app.emit("in", {})
        await app.settle()
        [letter] = await app.dead_letters("Bad")
    assert "not JSON-serializable" in letter.error and "'out'" in letter.error


async def test_state_trigger_fires_on_matching_changes_only(autojump_clock: Any) -> None:
    events: list[dict[str, Any]] = []

    async def writer(data: Any, ctx: Any) -> None:
        await ctx.state.set("messages", data["id"], {"status": "pending"})
        await ctx.state.update("messages", data["id"], {"status": "processed"})
        await ctx.state.update(
            "messages", data["id"], [{"op": "increment", "path": "views", "value": 2}]
        )

    async def notify(event: Any, ctx: Any) -> None:
        events.append(event)

    steps = [
        load_step({"name": "Writer", "triggers": [queue("write")]}, writer),
        load_step(
            {"name": "Notify", "triggers": [state("messages", filter={"status": "processed"})]},
            notify,
        ),
    ]
    async with open_test_runtime(steps) as app:
        await app.emit("write", {"id": "m1"})
        await app.settle(fail_fast=True)
    # Two deliveries of one standard queue may run in either order (trio shuffles ready
    # tasks), so compare them without order.
    events.sort(key=lambda e: "views" in e["value"])
    assert [e["event"] for e in events] == ["updated", "updated"]
    assert events[0]["key"] == "m1" and events[0]["namespace"] == "messages"
    assert events[0]["old_value"] == {"status": "pending"}
    assert events[1]["value"] == {"status": "processed", "views": 2}


async def test_sync_handlers_run_in_a_thread_with_a_blocking_context(autojump_clock: Any) -> None:
    def handler(data: Any, ctx: Any) -> None:
        ctx.state.set("seen", data["id"], {"ok": True})
        ctx.emit("done", {"id": data["id"]})
        ctx.logger.info("sync handler ran")

    step = load_step({"name": "Sync", "triggers": [queue("in")], "enqueues": ["done"]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("in", {"id": "x"})
        await app.settle(fail_fast=True)
        assert await app.state.get("seen", "x") == {"ok": True}
        assert app.messages("done") == [{"id": "x"}]


async def test_multi_trigger_step_matches_on_the_trigger(autojump_clock: Any) -> None:
    runs: list[tuple[str, Any]] = []

    async def handler(_input: Any, ctx: Any) -> Any:
        runs.append((ctx.trigger.type, ctx.get_data()))
        return await ctx.match(
            {
                "http": lambda: {"status": 200, "body": {"via": "http"}},
            }
        )

    step = load_step(
        {"name": "Both", "triggers": [queue("process-order"), http("POST", "/process-order")]},
        handler,
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.post("/process-order", json={"n": 1})
        await app.emit("process-order", {"n": 2})
        await app.settle(fail_fast=True)
    assert response.json == {"via": "http"}
    assert runs == [("http", {"n": 1}), ("queue", {"n": 2})]


async def test_daily_cron_over_a_month_runs_once_a_day(autojump_clock: Any) -> None:
    fired: list[datetime] = []

    async def handler(ctx: Any) -> None:
        fired.append(ctx.now())

    step = load_step({"type": "cron", "name": "Daily", "cron": "0 8 * * *"}, handler)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with open_test_runtime([step], start=start) as app:
        await app.advance(timedelta(days=31))
        await app.settle(fail_fast=True)
    assert len(fired) == 31
    assert fired[0] == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert fired[-1] == datetime(2026, 1, 31, 8, tzinfo=UTC)


async def test_cron_with_input_argument_and_timezone(autojump_clock: Any) -> None:
    ticks: list[Any] = []

    async def handler(input: Any, ctx: Any) -> None:
        # As in Motia 1.0, a cron handler's input is None; the tick is on ctx.
        assert input is None and ctx.get_data() is None
        ticks.append(ctx.tick)

    step = load_step({"name": "Paris", "triggers": [cron("0 8 * * *", tz="Europe/Paris")]}, handler)
    async with open_test_runtime([step], start=datetime(2026, 6, 1, tzinfo=UTC)) as app:
        # Two ticks: the second takes the dispatcher's path for a handler known to be async.
        await app.advance(timedelta(days=2))
        await app.settle(fail_fast=True)
    assert [t["scheduled"] for t in ticks] == ["2026-06-01T06:00:00Z", "2026-06-02T06:00:00Z"]


class FlakyBackend(MemoryBackend):
    """A memory backend whose second receive fails (the first has leased work): an actor
    crash, not a handler failure. Not the first: a crash at startup, before the test
    harness watches, would leave no log record to check."""

    calls = 0

    async def receive(self, subscription: Any, max_count: int) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("receive blew up")
        return await super().receive(subscription, max_count)


async def test_a_crashed_actor_is_restarted_and_loses_nothing(autojump_clock: Any) -> None:
    handled: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        handled.append(data["n"])

    step = load_step({"name": "H", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step], backend=FlakyBackend()) as app:
        for n in range(5):
            await app.emit("t", {"n": n})
        await app.settle(fail_fast=True)
        crashes = [r for r in app.logs if r.message == "step actor crashed"]
        restarts = [r for r in app.logs if r.message == "step actor restarted"]
    assert sorted(handled) == [0, 1, 2, 3, 4]
    assert len(crashes) == 1 and "receive blew up" in crashes[0].fields["error"]
    assert len(restarts) == 1 and restarts[0].fields["child"] == "H@t"


async def test_http_handler_error_is_a_500_with_an_id_in_the_log(autojump_clock: Any) -> None:
    async def broken(request: Any, ctx: Any) -> Any:
        raise RuntimeError("database on fire")

    step = load_step({"name": "Broken", "triggers": [http("GET", "/broken")]}, broken)
    async with open_test_runtime([step]) as app:
        response = await app.http.get("/broken")
        errors = [r for r in app.logs if r.level == "error"]
    assert response.status == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "database on fire" not in response.text and "Traceback" not in response.text
    error_id = response.json["error_id"]
    assert any(error_id in str(r.fields) or error_id in r.message for r in errors)


async def test_time_in_handlers_is_virtual(autojump_clock: Any) -> None:
    stamps: list[datetime] = []

    async def handler(data: Any, ctx: Any) -> None:
        stamps.append(ctx.now())
        await trio.sleep(3600)
        stamps.append(ctx.now())

    step = load_step({"name": "Clock", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step], start=datetime(2030, 5, 5, tzinfo=UTC)) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
    assert stamps == [datetime(2030, 5, 5, tzinfo=UTC), datetime(2030, 5, 5, 1, tzinfo=UTC)]


@pytest.mark.parametrize("bad", [{"data": 1}, {"topic": "out", "bogus": 1}])
async def test_emit_with_a_malformed_event_dict_is_a_clear_error(
    autojump_clock: Any, bad: Any
) -> None:
    caught: list[str] = []

    async def handler(data: Any, ctx: Any) -> None:
        try:
            await ctx.emit(bad)
        except TypeError as exc:
            caught.append(str(exc))

    step = load_step({"name": "E", "triggers": [queue("t")], "enqueues": ["out"]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
    assert caught and "'topic', 'data'" in caught[0]
