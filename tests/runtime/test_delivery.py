"""Queue delivery through the whole runtime: fan-out, retries, dead letters, ordering."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from motet import HandlerError, StepDefinitionError
from motet._clock import WallClock
from motet._envelope import QueueDepth, Subscription
from motet._runtime import Runtime, RuntimeOptions
from motet.backends import MemoryBackend
from motet.steps import load_step
from motet.testing import open_test_runtime


def event_step(name: str, topic: str, handler: Any, **extra: Any) -> Any:
    return load_step({"type": "event", "name": name, "subscribes": [topic], **extra}, handler)


async def test_each_subscriber_gets_its_own_copy(autojump_clock: Any) -> None:
    got: dict[str, list[Any]] = {"A": [], "B": []}

    async def a(data: Any, ctx: Any) -> None:
        data["touched_by"] = "A"  # must not leak into B's copy
        got["A"].append(data)

    async def b(data: Any, ctx: Any) -> None:
        got["B"].append(data)

    async with open_test_runtime([event_step("A", "t", a), event_step("B", "t", b)]) as app:
        await app.emit("t", {"n": 1})
        await app.settle(fail_fast=True)
    assert got["A"] == [{"n": 1, "touched_by": "A"}]
    assert got["B"] == [{"n": 1}]


async def test_retries_are_counted_exactly_and_back_off_exponentially(autojump_clock: Any) -> None:
    attempts: list[tuple[int, float]] = []

    async def flaky(data: Any, ctx: Any) -> None:
        attempts.append((ctx.message.attempt, trio.current_time()))
        raise RuntimeError("always fails")

    step = load_step(
        {
            "name": "Flaky",
            "triggers": [
                {
                    "type": "queue",
                    "topic": "t",
                    "maxRetries": 4,
                    "retryDelay": 500,
                    "max_retry_delay": 3000,
                }
            ],
        },
        flaky,
    )
    async with open_test_runtime([step]) as app:
        start = trio.current_time()
        await app.emit("t", {"n": 1})
        await app.settle()
        letters = await app.dead_letters("Flaky")
    assert [n for n, _ in attempts] == [1, 2, 3, 4, 5]  # 1 + max_retries
    gaps = [round(t2 - t1, 6) for (_, t1), (_, t2) in itertools.pairwise(attempts)]
    assert gaps == [0.5, 1.0, 2.0, 3.0]  # doubling, capped at max_retry_delay
    assert attempts[0][1] == start
    assert len(letters) == 1
    assert letters[0].attempts == 5 and "always fails" in letters[0].error
    assert letters[0].envelope.data == {"n": 1}


async def test_jittered_backoff_stays_within_bounds(autojump_clock: Any) -> None:
    times: list[float] = []

    async def flaky(data: Any, ctx: Any) -> None:
        times.append(trio.current_time())
        raise RuntimeError("no")

    step = event_step("Flaky", "t", flaky)
    async with open_test_runtime([step], retry_jitter=0.1) as app:
        await app.emit("t", None)
        await app.settle()
    gaps = [t2 - t1 for t1, t2 in itertools.pairwise(times)]
    for gap, base in zip(gaps, [1.0, 2.0, 4.0], strict=True):
        assert base * 0.9 <= gap <= base * 1.1


async def test_exhausted_messages_go_to_the_dead_letter_topic(autojump_clock: Any) -> None:
    failed: list[Any] = []

    async def broken(data: Any, ctx: Any) -> None:
        raise ValueError(f"cannot process {data['id']}")

    async def on_failed(data: Any, ctx: Any) -> None:
        failed.append((data, ctx.trace_id))

    steps = [
        load_step(
            {
                "name": "Worker",
                "triggers": [
                    {
                        "type": "queue",
                        "topic": "jobs",
                        "max_retries": 1,
                        "dead_letter_queue": "jobs.failed",
                    }
                ],
            },
            broken,
        ),
        event_step("OnFailed", "jobs.failed", on_failed),
    ]
    async with open_test_runtime(steps) as app:
        await app.emit("jobs", {"id": "j1"}, trace_id="trace-1")
        await app.settle()
        # Announced on the topic AND kept in the store, so it can be re-driven.
        [letter] = await app.dead_letters("Worker")
    [(data, trace)] = failed
    assert data["data"] == {"id": "j1"} and data["topic"] == "jobs" and data["step"] == "Worker"
    assert data["attempts"] == 2 and "cannot process j1" in data["error"]
    assert data["dead_letter_id"] == letter.id and data["traceback"] == letter.traceback
    assert "raise ValueError" in letter.traceback
    assert trace == "trace-1"


async def test_dead_letters_can_be_redriven(autojump_clock: Any) -> None:
    healthy = False
    handled: list[int] = []

    async def worker(data: Any, ctx: Any) -> None:
        if not healthy:
            raise RuntimeError("downstream is down")
        handled.append(ctx.message.attempt)

    step = load_step(
        {"name": "W", "triggers": [{"type": "queue", "topic": "t", "max_retries": 0}]}, worker
    )
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"x": 1})
        await app.settle()
        letters = await app.dead_letters("W")
        assert len(letters) == 1
        healthy = True
        assert await app.redrive(letters) == 1
        await app.settle(fail_fast=True)
        assert await app.dead_letters("W") == []
    assert handled == [1]  # attempts start again


async def test_input_failing_validation_is_dead_lettered_without_retries(
    autojump_clock: Any,
) -> None:
    @attrs.frozen
    class Pet:
        name: str
        age: int

    calls: list[Any] = []

    async def handler(pet: Pet, ctx: Any) -> None:
        calls.append(pet)

    step = load_step(
        {"type": "event", "name": "Pets", "subscribes": ["pet"], "input": Pet}, handler
    )
    async with open_test_runtime([step]) as app:
        await app.emit("pet", {"name": "Rex", "age": "3"})
        await app.emit("pet", {"name": "Ivy", "age": 2})
        await app.settle()
        [letter] = await app.dead_letters("Pets")
    assert calls == [Pet("Ivy", 2)]
    assert letter.attempts == 1
    assert "expected int @ $.age" in letter.error


async def test_fifo_keeps_group_order_under_retries_and_groups_do_not_block(
    autojump_clock: Any,
) -> None:
    done: list[str] = []
    failures = {"a1": 2}

    async def handler(data: Any, ctx: Any) -> None:
        if failures.get(data["id"], 0) > 0:
            failures[data["id"]] -= 1
            raise RuntimeError("try again")
        done.append(data["id"])

    step = load_step(
        {
            "name": "Ordered",
            "triggers": [{"type": "queue", "topic": "t", "strategy": "fifo", "concurrency": 5}],
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        for ident, group in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b"), ("a3", "a")]:
            await app.emit("t", {"id": ident}, group=group)
        await app.settle(fail_fast=False)
    assert [x for x in done if x.startswith("a")] == ["a1", "a2", "a3"]
    assert [x for x in done if x.startswith("b")] == ["b1", "b2"]
    assert done.index("b2") < done.index("a1")  # group b was not held up by a's retries


async def test_priority_strategy_handles_higher_priority_first(autojump_clock: Any) -> None:
    order: list[str] = []

    async def handler(data: Any, ctx: Any) -> None:
        order.append(data["id"])

    step = load_step(
        {
            "name": "P",
            "triggers": [{"type": "queue", "topic": "t", "strategy": "priority", "concurrency": 1}],
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        publisher = app.runtime.publisher
        assert publisher is not None
        envelopes = [
            publisher.envelope("t", {"id": i}, trace_id="x", priority=p)
            for i, p in [("low", 0), ("high", 9), ("mid", 5), ("high2", 9)]
        ]
        await publisher.publish_envelopes(envelopes)
        await app.settle(fail_fast=True)
    assert order == ["high", "high2", "mid", "low"]


async def test_a_handler_past_its_timeout_is_a_failed_attempt(autojump_clock: Any) -> None:
    attempts: list[int] = []

    async def slow(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        await trio.sleep(60)

    step = load_step(
        {
            "name": "Slow",
            "triggers": [{"type": "queue", "topic": "t", "timeout": 2, "max_retries": 1}],
        },
        slow,
    )
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle()
        [letter] = await app.dead_letters("Slow")
    assert attempts == [1, 2]
    assert letter.error == "HandlerTimeout: handler of step 'Slow' timed out after 2 s"


async def test_settle_fail_fast_reraises_the_handler_error(autojump_clock: Any) -> None:
    async def broken(data: Any, ctx: Any) -> None:
        raise KeyError("missing")

    step = load_step(
        {"name": "B", "triggers": [{"type": "queue", "topic": "t", "max_retries": 0}]}, broken
    )
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        with pytest.raises(HandlerError) as info:
            await app.settle(fail_fast=True)
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.step == "B"


async def test_concurrency_bounds_handlers_running_at_once(autojump_clock: Any) -> None:
    running = 0
    peak = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1

    step = load_step(
        {"name": "C", "triggers": [{"type": "queue", "topic": "t", "concurrency": 3}]}, handler
    )
    async with open_test_runtime([step]) as app:
        for i in range(10):
            await app.emit("t", {"i": i})
        await app.settle(fail_fast=True)
    assert peak == 3


@pytest.mark.parametrize(
    ("options", "handler_seconds", "ahead"),
    [
        ({}, 0.01, 8),  # default prefetch = 4 x concurrency: the next batches wait in the mailbox
        ({"prefetch": 5}, 0.01, 5),
        ({"prefetch": 0}, 0.01, 0),
        ({}, 0.2, 0),  # slow handlers: an idle instance elsewhere should get the rest
        ({"strategy": "priority"}, 0.01, 0),  # never ahead: a later, higher priority must win
        ({"strategy": "fifo"}, 0.01, 0),
    ],
)
async def test_an_instance_with_fast_handlers_leases_prefetch_beyond_them(
    autojump_clock: Any, options: dict[str, Any], handler_seconds: float, ahead: int
) -> None:
    release = trio.Event()
    running = 0
    both_running = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal running
        if data.get("warm"):  # what the actor has seen of this step's handlers so far
            await trio.sleep(handler_seconds)
            return
        running += 1
        if running == 2:
            both_running.set()
        await release.wait()

    trigger = {"type": "queue", "topic": "t", "concurrency": 2, **options}
    step = load_step({"name": "W", "triggers": [trigger]}, handler)
    async with open_test_runtime([step]) as app:
        for i in range(6):
            await app.emit("t", {"warm": True}, group=f"w{i}")
        await app.settle(fail_fast=True)
        for i in range(10):
            await app.emit("t", {"i": i}, group=f"g{i}")
        await both_running.wait()
        await trio.testing.wait_all_tasks_blocked()  # the fetcher has leased all it may
        [depth] = (await app.runtime.backend.depth()).values()
        assert running == 2
        if ahead:
            # How far into the window depends on how the emits interleaved with the leases
            # (while busy, it leases in batches of at least `ahead`).
            assert 2 < depth.leased <= 2 + ahead
        else:
            assert depth.leased == 2
        release.set()
        await app.settle(fail_fast=True)
    assert running == 10


async def test_no_lease_ahead_before_a_handler_has_finished(autojump_clock: Any) -> None:
    """A first message of a long job must not carry the second one off with it."""
    release = trio.Event()
    started = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        started.set()
        await release.wait()

    trigger = {"type": "queue", "topic": "t", "concurrency": 1, "prefetch": 3}
    step = load_step({"name": "Long", "triggers": [trigger]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"n": 1})
        await app.emit("t", {"n": 2})
        await started.wait()
        await trio.testing.wait_all_tasks_blocked()
        [depth] = (await app.runtime.backend.depth()).values()
        assert (depth.ready, depth.leased) == (1, 1)
        release.set()
        await app.settle(fail_fast=True)


async def test_a_handler_running_past_its_lease_keeps_it_and_runs_once(
    autojump_clock: Any,
) -> None:
    # The lease keeper's timer is set once an idle worker took the delivery (a round after
    # the hand-off): a handler that outlives its 30 s lease three times over still holds it,
    # so the idle second worker never gets the message again.
    attempts: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        await trio.sleep(100)

    trigger = {"type": "queue", "topic": "t", "concurrency": 2}
    step = load_step({"name": "Slow", "triggers": [trigger]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"n": 1})
        await app.settle(fail_fast=True)
    assert attempts == [1]


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_prefetch_must_be_a_whole_number_of_deliveries(bad: Any) -> None:
    trigger = {"type": "queue", "topic": "t", "prefetch": bad}
    with pytest.raises(
        StepDefinitionError, match=r"'triggers\[0\]\.prefetch': expected an integer"
    ):
        load_step({"name": "W", "triggers": [trigger]}, lambda data, ctx: None)


async def test_priority_queue_does_not_lease_ahead_of_a_busy_worker(autojump_clock: Any) -> None:
    # Regression: a delivery handed straight to a waiting worker was not counted as held,
    # so a concurrency-1 actor leased one message early and ran "low" before "urgent".
    order: list[str] = []

    async def handler(data: Any, ctx: Any) -> None:
        order.append(data["id"])
        if data["id"] == "first":
            await trio.sleep(10)

    step = load_step(
        {
            "name": "P",
            "triggers": [{"type": "queue", "topic": "t", "strategy": "priority", "concurrency": 1}],
        },
        handler,
    )
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"id": "first"})
        await trio.sleep(1)  # "first" is running now
        for ident, priority in [("low", 0), ("urgent", 9), ("normal", 5)]:
            await app.emit("t", {"id": ident}, priority=priority)
        await app.settle(fail_fast=True)
    assert order == ["first", "urgent", "normal", "low"]


class DyingProcessBackend(MemoryBackend):
    """Each of the first `deaths` deliveries is leased and then never answered, as if the
    process running its handler had been killed: only the lease expiry tells."""

    def __init__(self, deaths: int) -> None:
        super().__init__()
        self.deaths = deaths

    async def receive(self, subscription: Any, max_count: int) -> Any:
        while True:
            deliveries = await super().receive(subscription, max_count)
            if not self.deaths:
                return deliveries
            self.deaths -= 1


async def test_a_delivery_past_its_attempts_is_buried_without_running(autojump_clock: Any) -> None:
    # A handler that kills its process on every delivery never reports a failure: only the
    # backend's attempt counter (lost leases) shows it. Past max attempts it must not run
    # again, or it would loop forever.
    ran: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        ran.append(ctx.message.attempt)

    step = load_step(
        {
            "name": "Doomed",
            "triggers": [{"type": "queue", "topic": "t", "max_retries": 2, "lease": 5}],
        },
        handler,
    )
    async with open_test_runtime([step], backend=DyingProcessBackend(deaths=3)) as app:
        await app.emit("t", {"n": 1})
        await app.settle()
        [letter] = await app.dead_letters("Doomed")
    assert ran == []
    # The three attempts it was given, never more than 1 + max_retries: the 4th delivery,
    # which found them exhausted, did not run and is not counted.
    assert letter.attempts == 3 and "lost their lease" in letter.error


async def test_abandoned_deliveries_go_to_the_dead_letter_topic_too(autojump_clock: Any) -> None:
    failed: list[Any] = []

    async def handler(data: Any, ctx: Any) -> None:
        raise AssertionError("must not run")

    async def on_failed(data: Any, ctx: Any) -> None:
        failed.append(data)

    steps = [
        load_step(
            {
                "name": "Doomed",
                "triggers": [
                    {
                        "type": "queue",
                        "topic": "t",
                        "max_retries": 1,
                        "lease": 5,
                        "dead_letter_queue": "t.failed",
                    }
                ],
            },
            handler,
        ),
        event_step("OnFailed", "t.failed", on_failed),
    ]
    async with open_test_runtime(steps, backend=DyingProcessBackend(deaths=2)) as app:
        await app.emit("t", {"n": 1})
        await app.settle(fail_fast=True)
        [stored] = await app.dead_letters("Doomed")
    [letter] = failed
    # The store and the announcement tell one story: the two attempts it was given (the 3rd
    # delivery found them exhausted and did not run).
    assert letter["data"] == {"n": 1} and letter["attempts"] == stored.attempts == 2
    assert "lost their lease" in letter["error"] and letter["dead_letter_id"] == stored.id
    assert letter["traceback"] is None  # no attempt raised: each one lost its process


async def test_a_graceful_stop_releases_what_was_leased_ahead(autojump_clock: Any) -> None:
    """Stopping finishes the running handler but hands the prefetched messages back at once,
    uncounted, instead of running them first (another instance can take them now)."""
    started: list[int] = []
    gate = trio.Event()
    running = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        if data.get("warm"):
            return
        started.append(data["n"])
        running.set()
        await gate.wait()

    trigger = {"type": "queue", "topic": "t", "concurrency": 1, "prefetch": 2}
    step = load_step({"name": "Slow", "triggers": [trigger]}, handler)
    backend = MemoryBackend()
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())  # outlives the runtime
        options = RuntimeOptions(log_sink=False)
        runtime = Runtime([step], backend=backend, options=options)
        ended = trio.Event()

        async def serve(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await runtime.run(task_status=task_status)
            ended.set()

        await nursery.start(serve)
        for _ in range(3):  # fast handlers first: only then does the actor lease ahead
            await runtime.emit("t", {"warm": True})
        await trio.testing.wait_all_tasks_blocked()
        for n in range(5):
            await runtime.emit("t", {"n": n})
        await running.wait()
        await trio.testing.wait_all_tasks_blocked()
        [key] = (await backend.depth()).keys()
        leased = (await backend.depth())[key].leased
        assert 1 < leased <= 3  # one running, the rest leased ahead (how many: interleaving)
        runtime.stop()
        await trio.testing.wait_all_tasks_blocked()
        # The running handler holds the stop; the two leased ahead are ready again already.
        assert (await backend.depth())[key] == QueueDepth(ready=4, leased=1)
        gate.set()
        await ended.wait()
        assert started == [0]
        assert (await backend.depth())[key] == QueueDepth(ready=4)
        got = await backend.receive(Subscription("t", "Slow"), 10)
        assert sorted((d.envelope.data["n"], d.attempt) for d in got) == [
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
        ]
        nursery.cancel_scope.cancel()


async def test_a_busy_actor_leases_in_batches_not_per_freed_slot(autojump_clock: Any) -> None:
    """While busy, the actor asks the backend for at least `prefetch` deliveries at a time:
    one backend call per batch rather than one per handler that finished."""
    asked: list[int] = []

    class Counting(MemoryBackend):
        async def receive(self, subscription: Any, max_count: int) -> Any:
            asked.append(max_count)
            return await super().receive(subscription, max_count)

    async def handler(data: Any, ctx: Any) -> None:
        await trio.sleep(0.01 + data["n"] % 3 * 0.0025)  # fast, ending one at a time

    trigger = {"type": "queue", "topic": "t", "concurrency": 4, "prefetch": 4}
    step = load_step({"name": "Batch", "triggers": [trigger]}, handler)
    async with open_test_runtime([step], backend=Counting()) as app:
        for n in range(40):
            await app.emit("t", {"n": n})
        await app.settle(fail_fast=True)
    assert len(asked) > 5 and min(asked) >= 4, asked
