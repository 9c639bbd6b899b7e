"""Structured logs: every line carries step, trace id, message id and attempt, as JSON or
pretty lines, and reaches stdlib `logging` when asked."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import trio

from motet import RuntimeOptions, WallClock, open_runtime
from motet.backends import MemoryBackend
from motet.observe import LogQuery
from motet.project import ProjectConfig

from ._app import ANCHOR, open_observed, queue_step


def flaky_steps() -> list[Any]:
    async def work(data: Any, ctx: Any) -> None:
        ctx.logger.info("working", n=data["n"])
        if ctx.message.attempt == 1:
            raise RuntimeError("first try fails")

    return [queue_step("Work", "work", work, options={"maxRetries": 1, "retryDelay": 100})]


async def test_stored_lines_carry_step_trace_message_and_attempt(autojump_clock: Any) -> None:
    async with open_observed(flaky_steps()) as app:
        assert app.runtime.publisher is not None
        message_id = await app.runtime.publisher.publish(
            "work", {"n": 3}, trace_id="c" * 32, source="test"
        )
        await app.settle()
        lines = await app.telemetry.logs(LogQuery(step="Work"))
        tail = (await app.http.get("/_motet/logs", params={"step": "Work", "after": "0"})).json()
    working = [line for line in lines if line.message == "working"]
    assert [(line.trace_id, line.message_id, line.attempt) for line in working] == [
        ("c" * 32, message_id, 1),
        ("c" * 32, message_id, 2),
    ]
    assert dict(working[0].fields) == {"n": 3}
    retry = next(line for line in lines if line.message == "handler failed; will retry")
    assert (
        retry.level == "warn"
        and retry.attempt == 1
        and "first try fails" in str(retry.fields["error"])
    )
    assert [entry["msg"] for entry in tail["logs"]] == [line.message for line in lines]
    assert tail["cursor"] == lines[-1].seq


async def test_json_log_lines_have_every_field(autojump_clock: Any) -> None:
    out = io.StringIO()
    options = RuntimeOptions(log_stream=out, retry_jitter=0.0, shutdown_timeout=0.0)
    project = ProjectConfig(log_format="json", log_level="debug")
    async with open_runtime(
        flaky_steps(),
        backend=MemoryBackend(),
        project=project,
        clock=WallClock(ANCHOR),
        options=options,
    ) as runtime:
        assert runtime.publisher is not None
        message_id = await runtime.publisher.publish("work", {"n": 1}, trace_id="d" * 32)
        await trio.sleep(5)  # virtual: the retry (0.1 s later) has long finished
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    working = [r for r in records if r["msg"] == "working"]
    assert len(working) == 2
    assert working[1] == {
        "time": working[1]["time"],
        "level": "info",
        "msg": "working",
        "step": "Work",
        "trace_id": "d" * 32,
        "message_id": message_id,
        "attempt": 2,
        "n": 1,
    }
    started = next(r for r in records if r["msg"] == "motet runtime started")
    assert "step" not in started
    # 'work' is fed by the test, not by a step: the start-time warning says so, first.
    assert records[0]["level"] == "warn" and "'work' is subscribed" in records[0]["msg"]


async def test_stdlib_logging_switch_hands_records_to_an_embedding_service(
    autojump_clock: Any,
) -> None:
    received: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            received.append(record)

    target = logging.getLogger("motet")
    handler = Collect(level=logging.INFO)
    target.addHandler(handler)
    old_level = target.level
    target.setLevel(logging.INFO)
    try:
        async with open_observed(flaky_steps(), stdlib_logging=True) as app:
            assert app.runtime.publisher is not None
            await app.runtime.publisher.publish("work", {"n": 2}, trace_id="e" * 32)
            await app.settle()
        async with open_observed(flaky_steps()) as app:  # switched off: nothing more
            before = len(received)
            assert app.runtime.publisher is not None
            await app.runtime.publisher.publish("work", {"n": 2}, trace_id="e" * 32)
            await app.settle()
            assert len(received) == before
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)
    working = [r for r in received if r.getMessage() == "working"]
    assert [r.levelno for r in working] == [logging.INFO, logging.INFO]
    fields = working[1].motet  # type: ignore[attr-defined]
    assert (fields["step"], fields["trace_id"], fields["attempt"], fields["n"]) == (
        "Work",
        "e" * 32,
        2,
        2,
    )
    assert any(r.levelno == logging.WARNING and "will retry" in r.getMessage() for r in received)
