"""Every message that ends unhandled is kept: in the dead-letter store, with its traceback,
listable and re-drivable, whether or not its subscription names a dead-letter topic and
whether or not anyone subscribes to that topic; conditions and handlers are user code
whose failures are failed attempts, never actor crashes."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from motet import HandlerTimeout, NonRetryable, Observer, StepDefinitionError, queue, state
from motet._envelope import random_id
from motet.actors._dispatcher import HandlerRun
from motet.backends import MemoryBackend
from motet.backends._protocol import Backend
from motet.backends._redis import RedisBackend
from motet.backends._sqlite import SqliteBackend
from motet.steps import load_step
from motet.testing import open_test_runtime

from .._redis_server import RedisServer, redis_server


class Runs(Observer, list[HandlerRun]):
    """Every handler run, in order."""

    def on_run(self, run: HandlerRun) -> None:
        self.append(run)


HERE = Path(__file__).name
# s of virtual time: a condition that crash-loops its actor fails the test, never hangs it
NEVER_SETTLES = 3600


def seed_003_worker(handler: Any, **options: Any) -> Any:
    """Seed 003's queue settings: retries, then `dead_letter_queue: message.failed`, which
    no step subscribes to."""
    trigger = {
        "type": "queue",
        "topic": "message.sent",
        "max_retries": 2,
        "retry_delay": 1,
        "dead_letter_queue": "message.failed",
        **options,
    }
    return load_step({"name": "ProcessMessage", "triggers": [trigger]}, handler)


def process_text(message: dict[str, Any]) -> str:
    return str(message["items"])  # the seed's bug: the payload has no "items"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend, on real time (the durable ones wait on threads and sockets)."""
    if request.param == "memory":
        yield MemoryBackend()
    elif request.param == "sqlite":
        yield SqliteBackend(tmp_path / "motet.db")
    else:
        server: RedisServer = request.getfixturevalue("redis")
        yield RedisBackend(server.url, prefix="t" + random_id()[:12])


async def test_seed_003_keeps_every_exhausted_message_listable_and_redrivable(
    backend: Backend,
) -> None:
    healthy = False
    handled: list[str] = []

    async def handler(message: Any, ctx: Any) -> None:
        if not healthy:
            process_text(message)
        handled.append(message["messageId"])

    ids = [f"msg-{i}" for i in range(5)]
    async with open_test_runtime([seed_003_worker(handler)], backend=backend) as app:
        for message_id in ids:
            await app.emit("message.sent", {"messageId": message_id, "text": "hi"})
        await app.settle()
        letters = await app.dead_letters("ProcessMessage")
        assert sorted(d.envelope.data["messageId"] for d in letters) == ids
        for letter in letters:
            assert letter.error == "KeyError: 'items'"
            assert letter.attempts == 3  # 1 + max_retries
            assert letter.traceback is not None
            assert HERE in letter.traceback and "process_text" in letter.traceback
            assert 'return str(message["items"])' in letter.traceback
        # Also announced on the topic, in the same write as the store.
        announced = app.messages("message.failed")
        assert sorted(a["dead_letter_id"] for a in announced) == sorted(d.id for d in letters)
        assert {a["step"] for a in announced} == {"ProcessMessage"}

        healthy = True
        assert await app.redrive(letters) == 5
        await app.settle(fail_fast=True)
        assert await app.dead_letters() == []
    assert sorted(handled) == ids


async def test_an_error_text_that_is_not_valid_unicode_is_still_dead_lettered(
    backend: Backend,
) -> None:
    # A file name decoded with surrogateescape, quoted in an exception: a lone surrogate,
    # which neither SQLite nor Redis can store as text.
    async def handler(message: Any, ctx: Any) -> None:
        raise ValueError("cannot read caf\udce9.txt")

    async with open_test_runtime([seed_003_worker(handler)], backend=backend) as app:
        await app.emit("message.sent", {"messageId": "m1"})
        await app.settle()
        [letter] = await app.dead_letters()
        assert app.runtime.supervisor is not None
        assert {c.restarts for c in app.runtime.supervisor.which_children()} == {0}
    assert letter.error == "ValueError: cannot read caf\\udce9.txt"
    assert letter.traceback is not None and "caf\\udce9.txt" in letter.traceback
    assert letter.attempts == 3


async def test_invalid_input_with_a_dead_letter_topic_is_stored_and_announced(
    autojump_clock: Any,
) -> None:
    @attrs.frozen
    class Message:
        messageId: str  # the seed's field name
        text: str

    async def handler(message: Message, ctx: Any) -> None:
        pass

    async def on_failed(notice: Any, ctx: Any) -> None:
        notices.append(notice)

    notices: list[Any] = []
    steps = [
        seed_003_worker(handler, input=Message),
        load_step({"name": "OnFailed", "triggers": [queue("message.failed")]}, on_failed),
    ]
    async with open_test_runtime(steps) as app:
        await app.emit("message.sent", {"messageId": "m1"})  # no text
        await app.settle()
        [letter] = await app.dead_letters("ProcessMessage")
    assert letter.attempts == 1 and "required field missing @ $.text" in letter.error
    [notice] = notices
    assert notice["dead_letter_id"] == letter.id and notice["error"] == letter.error
    assert notice["data"] == {"messageId": "m1"} and notice["attempts"] == 1


async def test_non_retryable_goes_to_dead_letters_after_one_attempt(autojump_clock: Any) -> None:
    attempts: list[int] = []

    async def handler(order: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        raise NonRetryable(f"order {order['id']} has no items")

    async with open_test_runtime([seed_003_worker(handler)]) as app:
        await app.emit("message.sent", {"id": "o1"})
        await app.settle()
        [letter] = await app.dead_letters()
        [log] = [r for r in app.logs if "not retryable" in r.message]
    assert attempts == [1]
    assert letter.attempts == 1
    assert letter.error == "NonRetryable: order o1 has no items"
    assert letter.traceback is not None and HERE in letter.traceback
    assert log.level == "error" and log.traceback is not None and HERE in log.traceback
    [notice] = app.messages("message.failed")
    assert notice["error"] == letter.error and notice["traceback"] == letter.traceback


async def test_non_retryable_inside_an_exception_group_is_final_too(autojump_clock: Any) -> None:
    attempts: list[int] = []

    async def handler(order: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)

        async def check() -> None:
            raise NonRetryable("refused card")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(check)

    async with open_test_runtime([seed_003_worker(handler)]) as app:
        await app.emit("message.sent", {"id": "o1"})
        await app.settle()
        [letter] = await app.dead_letters()
    assert attempts == [1]
    assert letter.error == "NonRetryable: refused card"


async def test_a_handler_over_its_timeout_fails_with_handler_timeout(autojump_clock: Any) -> None:
    attempts: list[int] = []
    runs = Runs()

    async def slow(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        await trio.sleep(60)

    step = load_step(
        {"name": "Slow", "triggers": [queue("t", timeout=2, max_retries=1, retry_delay=10)]}, slow
    )
    async with open_test_runtime([step], observers=[runs]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("Slow")
    assert attempts == [1, 2]  # retryable
    assert letter.error == "HandlerTimeout: handler of step 'Slow' timed out after 2 s"
    assert [run.outcome for run in runs] == ["timeout", "timeout"]
    assert [type(f.original) for f in app.failures] == [HandlerTimeout, HandlerTimeout]
    # The traceback says where the handler was when its time ran out.
    assert letter.traceback is not None
    assert f'{HERE}", line' in letter.traceback and "await trio.sleep(60)" in letter.traceback
    assert letter.traceback.endswith(letter.error)
    assert all(run.traceback and "await trio.sleep(60)" in run.traceback for run in runs)


async def test_a_timed_out_handler_with_its_own_nursery_shows_where_it_waited(
    autojump_clock: Any,
) -> None:
    async def fan_out(data: Any, ctx: Any) -> None:
        async with trio.open_nursery() as nursery:  # the line the timeout found it at
            nursery.start_soon(trio.sleep, 60)

    step = load_step({"name": "Fan", "triggers": [queue("t", timeout=2, max_retries=0)]}, fan_out)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("Fan")
    assert letter.error == "HandlerTimeout: handler of step 'Fan' timed out after 2 s"
    assert letter.traceback is not None and "in fan_out" in letter.traceback
    assert "async with trio.open_nursery() as nursery:" in letter.traceback


async def test_a_sync_handler_over_its_timeout_fails_with_handler_timeout_too(
    autojump_clock: Any,
) -> None:
    release = threading.Event()

    def slow(data: Any, ctx: Any) -> None:
        release.wait(10)  # a thread trio cannot interrupt: abandoned at the timeout

    step = load_step({"name": "SlowSync", "triggers": [queue("t", timeout=2, max_retries=0)]}, slow)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("SlowSync")
        release.set()
    assert letter.error == "HandlerTimeout: handler of step 'SlowSync' timed out after 2 s"


async def test_a_handler_raising_handler_timeout_itself_is_a_timeout(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        raise HandlerTimeout("upstream", 5)

    step = load_step({"name": "Relay", "triggers": [queue("t", max_retries=0)]}, handler)
    runs = Runs()
    async with open_test_runtime([step], observers=[runs]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("Relay")
    assert letter.error == "HandlerTimeout: handler of step 'upstream' timed out after 5 s"
    assert [(r.outcome, r.error) for r in runs] == [("timeout", "timed out after 5 s")]


async def test_a_handlers_own_too_slow_error_without_a_timeout_is_a_plain_failure(
    autojump_clock: Any,
) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        with trio.fail_after(1):
            await trio.sleep(5)

    step = load_step({"name": "Own", "triggers": [queue("t", max_retries=0)]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("Own")
        assert app.runtime.supervisor is not None
        assert {c.restarts for c in app.runtime.supervisor.which_children()} == {0}
    assert letter.error.startswith("TooSlowError")
    assert letter.traceback is not None and "trio.fail_after(1)" in letter.traceback


async def test_failure_logs_carry_the_traceback(autojump_clock: Any) -> None:
    async def handler(message: Any, ctx: Any) -> None:
        process_text(message)

    async with open_test_runtime([seed_003_worker(handler)]) as app:
        await app.emit("message.sent", {"messageId": "m1"})
        await app.settle()
    failures = [r for r in app.logs_of("ProcessMessage") if "handler failed" in r.message]
    assert [r.level for r in failures] == ["warn", "warn", "error"]
    for record in failures:
        assert record.traceback is not None
        assert "process_text" in record.traceback and "KeyError: 'items'" in record.traceback


# -- state trigger conditions ----------------------------------------------------------


def status_is_done(event: Any, ctx: Any) -> bool:
    return bool(event["value"]["status"] == "done")  # a delete event has value None


def notify_step(condition: Any, handler: Any, **options: Any) -> Any:
    return load_step(
        {
            "name": "Notify",
            "triggers": [state("orders", condition=condition, max_retries=2, **options)],
        },
        handler,
    )


def writer_step() -> Any:
    async def writer(data: Any, ctx: Any) -> None:
        await ctx.state.set("orders", "o1", {"status": "pending"})
        await ctx.state.set("orders", "o1", {"status": "done"})
        await ctx.state.delete("orders", "o1")

    return load_step({"name": "Writer", "triggers": [queue("write")]}, writer)


async def test_a_raising_condition_is_retried_then_dead_lettered_and_never_crashes_the_actor(
    autojump_clock: Any,
) -> None:
    seen: list[Any] = []

    async def handler(event: Any, ctx: Any) -> None:
        seen.append((event["event"], event["value"]))

    async with open_test_runtime([writer_step(), notify_step(status_is_done, handler)]) as app:
        await app.emit("write", {})
        with trio.fail_after(NEVER_SETTLES):
            await app.settle()
        [letter] = await app.dead_letters("Notify")
        assert app.runtime.supervisor is not None
        restarts = {c.id: c.restarts for c in app.runtime.supervisor.which_children()}
    assert seen == [("updated", {"status": "done"})]
    assert letter.envelope.data["event"] == "deleted"
    assert letter.error == "TypeError: 'NoneType' object is not subscriptable"
    assert letter.attempts == 3  # retried like a handler failure
    assert letter.traceback is not None
    assert "status_is_done" in letter.traceback and HERE in letter.traceback
    assert set(restarts.values()) == {0}, restarts
    assert not [r for r in app.logs if "crashed" in r.message or "restarted" in r.message]
    retries = [r for r in app.logs_of("Notify") if "condition failed; will retry" in r.message]
    assert len(retries) == 2 and all(r.traceback for r in retries)


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param(lambda event: event["value"]["status"] == "done", id="input"),
        pytest.param(lambda event, ctx: event["value"]["status"] == "done", id="input-ctx"),
        pytest.param(lambda *args: args[0]["value"]["status"] == "done", id="varargs"),
    ],
)
async def test_conditions_take_the_input_or_motias_input_and_ctx(
    condition: Any, autojump_clock: Any
) -> None:
    seen: list[Any] = []

    async def handler(event: Any, ctx: Any) -> None:
        seen.append(event["value"])

    async with open_test_runtime(
        [writer_step(), notify_step(condition, handler, events=["created", "updated"])]
    ) as app:
        await app.emit("write", {})
        with trio.fail_after(NEVER_SETTLES):
            await app.settle(fail_fast=True)
        assert await app.dead_letters() == []
    assert seen == [{"status": "done"}]


async def test_an_async_condition_gets_the_deliverys_context(autojump_clock: Any) -> None:
    contexts: list[Any] = []
    seen: list[Any] = []

    async def condition(event: Any, ctx: Any) -> bool:
        contexts.append((ctx.trace_id, ctx.message.attempt))
        await trio.sleep(0)
        return event["value"] is not None and event["value"]["status"] == "done"

    async def handler(event: Any, ctx: Any) -> None:
        seen.append((event["value"], ctx.trace_id))

    async with open_test_runtime([writer_step(), notify_step(condition, handler)]) as app:
        await app.emit("write", {}, trace_id="trace-1")
        with trio.fail_after(NEVER_SETTLES):
            await app.settle(fail_fast=True)
    assert seen == [({"status": "done"}, "trace-1")]
    assert contexts == [("trace-1", 1)] * 3


def test_a_condition_taking_neither_form_is_refused_at_load() -> None:
    def three(event: Any, ctx: Any, extra: Any) -> bool:
        return True

    with pytest.raises(StepDefinitionError) as caught:
        notify_step(three, lambda event, ctx: None)
    assert caught.value.field == "condition"
    assert "condition(input) or condition(input, ctx)" in str(caught.value)
