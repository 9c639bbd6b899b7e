"""How a step actor's tasks are laid out. Workers start on demand (one when a delivery is
handed out and none is idle, up to `concurrency`), so an idle subscription holds no
handler tasks. A step that runs one message at a time and leases nothing ahead (cron,
fifo and priority queues at concurrency 1) has one worker that leases for itself: no
fetcher, and a graceful stop cancels its lease call but never its running handler."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio

from motet._errors import BackendUnavailable
from motet._runtime import Runtime, RuntimeOptions
from motet.actors import StepActor
from motet.backends import MemoryBackend
from motet.steps import load_step
from motet.supervision import ChildSpec


def _runtime(
    handler: Any,
    backend: MemoryBackend,
    *,
    concurrency: int,
    strategy: str = "standard",
    **options: Any,
) -> Runtime:
    queue = {"type": "queue", "topic": "t", "concurrency": concurrency, "strategy": strategy}
    queue.update(options)
    step = load_step({"name": "S", "triggers": [queue]}, handler)
    return Runtime([step], backend=backend, options=RuntimeOptions(log_sink=False))


def _tasks(actor: StepActor, name: str = "") -> int:
    """The actor's own tasks (its run's children; the fetcher or the solo worker runs in
    the run's task itself) whose coroutine is `name` (_work, _acker...; "": all)."""
    assert actor._nursery is not None
    return sum(task.name.endswith(f".{name}") for task in actor._nursery.child_tasks)


async def test_workers_start_on_demand_up_to_concurrency(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    release = trio.Event()
    running = 0
    most = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    runtime = _runtime(handler, backend, concurrency=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        (actor,) = runtime.actors
        await trio.sleep(1)
        assert _tasks(actor) == 0  # idle: no worker, acker or lease keeper yet
        await runtime.emit("t", {"n": 0})
        await trio.sleep(1)
        assert (_tasks(actor, "_work"), running) == (1, 1)
        for n in range(1, 10):
            await runtime.emit("t", {"n": n})
        await trio.sleep(1)
        assert (_tasks(actor, "_work"), running) == (4, 4)  # never past concurrency
        release.set()
        while backend.pending_total():
            await trio.sleep(1)
        assert most == 4
        # Idle workers stay and take the next deliveries: no new ones are started.
        release = trio.Event()
        for n in range(3):
            await runtime.emit("t", {"n": n})
        await trio.sleep(1)
        assert (_tasks(actor, "_work"), running) == (4, 3)
        release.set()
        runtime.stop()


async def test_a_concurrency_1_fifo_step_has_one_self_leasing_worker(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    seen: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        if data["n"] % 3 == 0:
            await trio.sleep(0.5)  # a handler that yields does not let the next one start
        seen.append(data["n"])

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        (actor,) = runtime.actors
        await trio.sleep(1)
        assert _tasks(actor) == 0  # its one worker runs in the actor's own task
        for n in range(40):
            await runtime.emit("t", {"n": n})
        while backend.pending_total():
            await trio.sleep(1)
        assert seen == list(range(40))  # one at a time, in order
        runtime.stop()


class _Rounds(trio.abc.Instrument):
    """Counts scheduler steps of every task."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


async def test_a_self_leasing_worker_takes_one_round_per_delivery(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    handled = 0

    async def handler(data: Any, ctx: Any) -> None:
        nonlocal handled
        handled += 1

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await trio.sleep(1)
        rounds = _Rounds()
        trio.lowlevel.add_instrument(rounds)
        for n in range(20):
            await runtime.emit("t", {"n": n})
            await trio.sleep(1)  # parked again, idle, between deliveries
        trio.lowlevel.remove_instrument(rounds)
        assert handled == 20
        # Per delivery: this task's sleep and the worker (lease, handler, ack, lease);
        # the fetcher hand-off took two more. Some slack for periodic schedule points.
        assert rounds.steps <= 20 * 2 + 4
        runtime.stop()


async def test_a_stop_while_the_solo_worker_waits_for_a_lease_ends_at_once(
    autojump_clock: Any,
) -> None:
    backend = MemoryBackend()
    runtime = _runtime(lambda data, ctx: None, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await trio.sleep(1)
        started = trio.current_time()
        runtime.stop()
    # Not held up by the shutdown timeout: nothing was running, the lease call was cancelled.
    assert trio.current_time() - started < 1
    assert backend.pending_total() == 0


async def test_a_stop_lets_the_solo_workers_running_handler_finish(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    finished: list[int] = []
    started = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        started.set()
        await trio.sleep(5)  # checkpoints: a cancelled scope would stop it here
        finished.append(data["n"])

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await runtime.emit("t", {"n": 1})
        await runtime.emit("t", {"n": 2})
        await started.wait()
        runtime.stop()
    assert finished == [1]  # the running one finished; the next was not leased
    assert backend.pending_total() == 1

    # The second is still queued, its attempt uncounted: a new run handles it as attempt 1.
    attempts: list[int] = []

    async def again(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)

    runtime = _runtime(again, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        while backend.pending_total():
            await trio.sleep(1)
        runtime.stop()
    assert attempts == [1]


async def test_a_delivery_leased_in_the_moment_of_a_stop_is_released(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    ran: list[int] = []
    runtime = _runtime(lambda data, ctx: ran.append(1), backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        (actor,) = runtime.actors
        await trio.sleep(1)
        # The publish hands the message to the parked worker's lease call; the stop comes
        # before the worker runs again.
        await runtime.emit("t", {"n": 1})
        actor.stop_fetching()
        runtime.stop()
    assert ran == []
    assert backend.pending_total() == 1

    attempts: list[int] = []

    async def again(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)

    runtime = _runtime(again, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        while backend.pending_total():
            await trio.sleep(1)
        runtime.stop()
    assert attempts == [1]  # released with its attempt uncounted, not left to its lease


async def test_cancel_running_stops_the_solo_workers_handler_and_it_goes_on(
    autojump_clock: Any,
) -> None:
    backend = MemoryBackend()
    done: list[int] = []
    started = trio.Event()

    async def handler(data: Any, ctx: Any) -> None:
        if data["n"] == 1:
            started.set()
            await trio.sleep_forever()
        done.append(data["n"])

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        first = await runtime.emit("t", {"n": 1})
        await runtime.emit("t", {"n": 2})
        await started.wait()
        outcome = await runtime.cancel(first)
        assert outcome.running
        while backend.pending_total():
            await trio.sleep(1)
        assert done == [2]
        status = await runtime.message(first)
        assert status is not None and status.state == "cancelled"
        runtime.stop()


@pytest.mark.parametrize(("concurrency", "strategy"), [(1, "fifo"), (4, "standard")])
async def test_a_long_handler_keeps_its_lease(
    autojump_clock: Any, concurrency: int, strategy: str
) -> None:
    # The lease keeper is started with the first delivery held (the solo worker's or the
    # fetcher's) and extends the lease while the handler runs.
    backend = MemoryBackend()
    attempts: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        attempts.append(ctx.message.attempt)
        await trio.sleep(200)  # several leases long (30 s each)

    runtime = _runtime(handler, backend, concurrency=concurrency, strategy=strategy)
    # A second instance on the same backend would lease the message once its lease lapsed.
    other = _runtime(handler, backend, concurrency=concurrency, strategy=strategy)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        message_id = await runtime.emit("t", {"n": 1})
        await trio.sleep(1)
        await nursery.start(other.run)
        while backend.pending_total():
            await trio.sleep(1)
        status = await runtime.message(message_id)
        assert status is not None and status.state == "done"
        runtime.stop()
        other.stop()
    assert attempts == [1]  # never handed out a second time


async def test_a_solo_handler_that_runs_before_it_first_waits_keeps_its_lease(
    autojump_clock: Any,
) -> None:
    # The solo worker arms the lease keeper's timer only when the handling first suspends,
    # with the period counted from when it took the delivery, not from the suspension: a
    # handler that computes for 25 s (here, the clock jumps inside it) and then waits must
    # have its lease extended at once, before the 30 s lease lapses. The second and third
    # messages check the same for deliveries after the keeper has started and stopped.
    backend = MemoryBackend()
    attempts: list[tuple[int, int]] = []

    async def handler(data: Any, ctx: Any) -> None:
        attempts.append((data["n"], ctx.message.attempt))
        autojump_clock.jump(25)  # a stretch of work that never yields
        await trio.sleep(100)

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    other = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        for n in range(3):
            await runtime.emit("t", {"n": n})
            await trio.sleep(1)
            if n == 0:
                await nursery.start(other.run)  # would lease a message whose lease lapsed
            while backend.pending_total():
                await trio.sleep(1)
        runtime.stop()
        other.stop()
    assert attempts == [(0, 1), (1, 1), (2, 1)]  # never handed out a second time


async def test_a_solo_handler_that_never_waits_arms_no_lease_timer(autojump_clock: Any) -> None:
    # It cannot outlive its lease while the keeper sleeps (nothing else runs meanwhile), so
    # the keeper is not even started; one that waits starts it (the tests above).
    backend = MemoryBackend()
    ran: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        ran.append(data["n"])

    runtime = _runtime(handler, backend, concurrency=1, strategy="fifo")
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        (actor,) = runtime.actors
        for n in range(3):
            await runtime.emit("t", {"n": n})
            await trio.sleep(1)
            assert actor._lease_timer.deadline == math.inf
            assert _tasks(actor, "_keep_leases") == 0
        runtime.stop()
    assert ran == [0, 1, 2]


async def test_a_restarted_actor_starts_workers_for_what_its_mailbox_holds(
    autojump_clock: Any,
) -> None:
    backend = MemoryBackend()
    release = trio.Event()
    handled: list[int] = []

    async def handler(data: Any, ctx: Any) -> None:
        if data["n"] >= 2:
            await release.wait()
        handled.append(data["n"])

    runtime = _runtime(handler, backend, concurrency=2, prefetch=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        (actor,) = runtime.actors
        for n in range(2):  # quick handlers: the actor starts leasing ahead
            await runtime.emit("t", {"n": n})
        await trio.sleep(1)
        for n in range(2, 8):
            await runtime.emit("t", {"n": n})
        await trio.sleep(1)
        assert actor.mailbox.buffered() == 4  # 2 running, 4 leased ahead and waiting
        # The actor dies (its running handlers with it) and is started again: the mailbox
        # and what it holds outlive the crash, and workers are started for it.
        supervisor = runtime.supervisor
        assert supervisor is not None
        await supervisor.terminate_child(actor.name)
        await supervisor.start_child(ChildSpec(id=actor.name, start=actor.run, shutdown=0.0))
        release.set()
        await trio.sleep(1)
        assert sorted(handled) == [0, 1, 4, 5, 6, 7]
        assert actor.mailbox.buffered() == 0
        runtime.stop()


async def test_the_solo_worker_waits_out_a_refused_lease_and_a_stop_ends_the_wait(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = MemoryBackend()
    real = MemoryBackend.receive
    refusals, refused = 3, 0

    async def receive(self: MemoryBackend, subscription: Any, max_count: int) -> Any:
        nonlocal refused
        if refused < refusals:
            refused += 1
            raise BackendUnavailable("memory backend: refused for the test")
        return await real(self, subscription, max_count)

    monkeypatch.setattr(MemoryBackend, "receive", receive)
    handled: list[int] = []
    runtime = _runtime(
        lambda data, ctx: handled.append(data["n"]), backend, concurrency=1, strategy="fifo"
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await runtime.emit("t", {"n": 1})
        while backend.pending_total():
            await trio.sleep(1)
        assert handled == [1] and refused == refusals  # waited out, not a crash
        assert runtime.supervisor is not None
        assert [c.restarts for c in runtime.supervisor.which_children()] == [0]
        # The worker waits in a lease call now; after the next delivery, its leases are
        # refused until its backoff is at the longest (5 s), and a stop cancels that wait.
        refused, refusals = 0, 10**6
        await runtime.emit("t", {"n": 2})
        while refused < 10:
            await trio.sleep(0.01)
        await runtime.emit("t", {"n": 3})
        started = trio.current_time()
        runtime.stop()
    assert trio.current_time() - started < 1  # not held up by the backoff
    assert handled == [1, 2]
    assert backend.pending_total() == 1  # the third stays queued


async def test_a_stopping_solo_worker_leases_nothing_while_other_steps_drain(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = MemoryBackend()
    leased: list[str] = []
    real = MemoryBackend.receive

    async def receive(self: MemoryBackend, subscription: Any, max_count: int) -> Any:
        deliveries = await real(self, subscription, max_count)
        leased.extend(d.envelope.topic for d in deliveries)
        return deliveries

    monkeypatch.setattr(MemoryBackend, "receive", receive)
    ran: list[str] = []
    started = trio.Event()

    async def slow(data: Any, ctx: Any) -> None:
        started.set()
        await trio.sleep(5)
        await ctx.emit("t", {"n": 1})  # while the runtime drains after a stop
        ran.append("slow")

    steps = [
        load_step(
            {
                "name": "Solo",
                "triggers": [{"type": "queue", "topic": "t", "concurrency": 1, "strategy": "fifo"}],
            },
            lambda data, ctx: ran.append("solo"),
        ),
        load_step(
            {"name": "Slow", "triggers": [{"type": "queue", "topic": "slow"}], "enqueues": ["t"]},
            slow,
        ),
    ]
    runtime = Runtime(steps, backend=backend, options=RuntimeOptions(log_sink=False))
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        await runtime.emit("slow", {})
        await started.wait()
        runtime.stop()
    # The stop cancelled the solo worker's lease call: the message emitted during the drain
    # was not leased (and released) but left alone.
    assert ran == ["slow"] and leased == ["slow"]
    assert backend.pending_total() == 1
