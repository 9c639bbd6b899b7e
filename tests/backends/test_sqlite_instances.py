"""Several SqliteBackend instances on one file stand for several processes on one host; and
the group commit that keeps one writer fast."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Delivery
from motet.backends._sqlite import SqliteBackend
from motet.backends._sqlite_writer import Tx
from motet.state import StateWrite

from .contract import ContractTools, datas, env, sub
from .test_sqlite_durability import opened


class TestInstances(ContractTools):
    quiet_seconds = 0.2

    async def test_each_message_is_handled_by_one_instance(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        total = 400
        handled: list[tuple[str, str]] = []  # (instance, message id)
        async with opened(path, clock) as a, opened(path, clock) as b:
            await a.declare([s])
            await b.publish([env(i) for i in range(total // 2)])
            await a.publish([env(i) for i in range(total // 2, total)])
            finished = trio.Event()
            all_leased = trio.Event()  # every consumer holds a first lease before any ack
            leased = acked = 0

            async def consumer(name: str, backend: SqliteBackend) -> None:
                nonlocal acked, leased
                first = True
                while True:
                    deliveries = await backend.receive(s, 7)
                    if first:
                        # 6 x 7 < total, so each first receive is a non-empty, competing lease
                        assert deliveries
                        first, leased = False, leased + 1
                        if leased == 6:
                            all_leased.set()
                        await all_leased.wait()
                    handled.extend((name, d.envelope.id) for d in deliveries)
                    await backend.ack(deliveries)
                    acked += len(deliveries)
                    if acked >= total:
                        finished.set()

            async with trio.open_nursery() as nursery:
                for i in range(3):
                    nursery.start_soon(consumer, f"a{i}", a)
                    nursery.start_soon(consumer, f"b{i}", b)
                with trio.fail_after(1):  # virtual: nothing here waits on the clock
                    await finished.wait()
                nursery.cancel_scope.cancel()
            ids = [message for _, message in handled]
            assert len(ids) == len(set(ids)) == total
            assert {name[0] for name, _ in handled} == {"a", "b"}
            assert (await b.depth())[s.key].pending == 0

    async def test_a_tick_fires_once_across_instances(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        wins: list[bool] = []
        async with opened(path, clock) as a, opened(path, clock) as b:

            async def claim(backend: SqliteBackend, scheduled: float) -> None:
                wins.append(await backend.claim_tick("report", scheduled))

            async with trio.open_nursery() as nursery:
                for scheduled in (1_767_603_600.0, 1_767_603_660.0):
                    for _ in range(10):
                        nursery.start_soon(claim, a, scheduled)
                        nursery.start_soon(claim, b, scheduled)
            assert sorted(wins) == [False] * 38 + [True] * 2
            assert await a.last_tick("report") == await b.last_tick("report") == 1_767_603_660.0

    async def test_subscriptions_declared_elsewhere_receive_publishes(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        async with opened(path, clock) as worker, opened(path, clock) as gateway:
            await worker.declare([s])
            await gateway.publish([env("from the gateway process")])  # it declared nothing
            assert datas(await self.receive_some(worker, s)) == ["from the gateway process"]
            await gateway.state_write("n", "k", StateWrite.set(1), trace_id="t")
            assert await worker.state_get("n", "k") == 1

    async def test_waiting_receive_sees_another_instances_publish_by_polling(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub()
        got: list[Delivery] = []
        async with (
            # Without the doorbell (test_sqlite_doorbell.py), polling is all there is.
            opened(path, clock, poll_interval=0.05, doorbell_poll=None) as worker,
            opened(path, clock) as publisher,
        ):
            await worker.declare([s])
            async with trio.open_nursery() as nursery:

                async def consumer() -> None:
                    got.extend(await worker.receive(s, 10))

                nursery.start_soon(consumer)
                await self.quiet()
                await publisher.publish([env("hello")])
                await self.quiet()
                assert got == []  # no local commit woke it: it learns at the next poll
                mock_clock.jump(0.05)
                await self.quiet()
                if not got:
                    nursery.cancel_scope.cancel()
        assert datas(got) == ["hello"]

    async def test_expired_lease_of_a_dead_instance_is_taken_over(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        path = tmp_path / "motet.db"
        s = sub(lease=10)
        async with opened(path, clock) as survivor:
            async with opened(path, clock) as doomed:
                await doomed.declare([s])
                await doomed.publish([env("job")])
                [taken] = await self.receive_some(doomed, s)
            # `doomed` is gone without acking; the survivor waits out the lease.
            assert await self.receive_now(survivor, s) == []
            mock_clock.jump(10)
            [again] = await self.receive_some(survivor, s)
            assert (again.envelope, again.attempt) == (taken.envelope, 2)
            await survivor.ack([taken])  # the lost lease's ack changes nothing
            assert (await survivor.depth())[s.key].leased == 1


class TestGroupCommit(ContractTools):
    quiet_seconds = 0.2

    async def test_concurrent_calls_share_commits(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        s = sub()
        async with opened(tmp_path / "motet.db", clock) as backend:
            await backend.declare([s])
            before = backend.statistics()

            async def publish(i: int) -> None:
                await backend.publish([env(i)])

            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(publish, i)
            after = backend.statistics()
            assert after.calls - before.calls == 100
            assert after.commits - before.commits <= 10  # 100 publishes, a few fsyncs
            got = await self.receive_all(backend, s)
            assert sorted(datas(got)) == list(range(100))

    @pytest.mark.parametrize("cancelled", ["while-queued", "after-its-lease-ran"])
    async def test_cancelled_receive_leaves_no_lease_behind(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock, cancelled: str
    ) -> None:
        """A receive cancelled before its result arrives must not leave its messages leased
        for 30 s to nobody: either its lease never runs, or it is given back."""
        s = sub(lease=30)
        async with opened(tmp_path / "motet.db", clock) as backend:
            await backend.declare([s])
            await backend.publish([env(i) for i in range(3)])
            writer = backend._running()[0]
            gate_a, in_b, gate_b = threading.Event(), threading.Event(), threading.Event()

            def hold(tx: Tx, gate: threading.Event, entered: threading.Event | None) -> None:
                if entered is not None:
                    entered.set()
                gate.wait()

            async with trio.open_nursery() as nursery:
                # Batch 1 holds the writer, so the receive and `b` queue up as batch 2,
                # in that order: when `b` runs, the lease before it has run.
                nursery.start_soon(writer.call, lambda tx: hold(tx, gate_a, None))
                await trio.testing.wait_all_tasks_blocked()
                with trio.CancelScope() as receiving:
                    async with trio.open_nursery() as inner:
                        inner.start_soon(backend.receive, s, 10)
                        await trio.testing.wait_all_tasks_blocked()
                        nursery.start_soon(writer.call, lambda tx: hold(tx, gate_b, in_b))
                        await trio.testing.wait_all_tasks_blocked()
                        if cancelled == "while-queued":
                            receiving.cancel()
                            gate_a.set()
                        else:
                            gate_a.set()
                            await trio.to_thread.run_sync(in_b.wait)
                            receiving.cancel()
                        gate_b.set()
            await self.quiet()
            got = await self.receive_some(backend, s)
            assert [(d.envelope.data, d.attempt) for d in got] == [(0, 1), (1, 1), (2, 1)]
