"""What the SQLite file keeps across a clean restart and across a crash.

A crash is simulated two ways: in-process, by copying the database and its WAL while the
backend is still running (exactly the bytes a kill -9 leaves, with no close-time checkpoint),
so MockClock can then drive leases and retry timers deterministically; and for real, by
SIGKILLing a child process that is publishing.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import QueueDepth, state_topic
from motet.backends import SqliteOptions
from motet.backends._sqlite import SqliteBackend
from motet.state import StateWrite

from .contract import ContractTools, datas, env, sub

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def opened(path: Path, clock: WallClock, **options: object) -> AsyncIterator[SqliteBackend]:
    async with trio.open_nursery() as nursery:
        backend: SqliteBackend = await nursery.start(
            SqliteBackend(path, SqliteOptions(**options)).run, clock
        )  # type: ignore[arg-type]
        yield backend
        nursery.cancel_scope.cancel()


def crash_copy(path: Path, into: Path) -> Path:
    """The files as a process killed right now would leave them (database + WAL)."""
    into.mkdir(parents=True)
    for suffix in ("", "-wal"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            shutil.copyfile(source, into / (path.name + suffix))
    return into / path.name


class TestRestart(ContractTools):
    quiet_seconds = 0.2

    @pytest.mark.parametrize("ending", ["clean-close", "crash"])
    async def test_everything_survives(
        self,
        tmp_path: Path,
        clock: WallClock,
        mock_clock: MockClock,
        ending: Literal["clean-close", "crash"],
    ) -> None:
        path = tmp_path / "first" / "motet.db"
        jobs, audit = sub(lease=30), sub(step="audit")
        watcher = sub(topic=state_topic("pets"), step="watcher")
        async with opened(path, clock) as backend:
            await backend.declare([jobs, audit, watcher])
            await backend.publish([env(i) for i in range(5)])
            done, failing, poison = await self.receive_some(backend, jobs, max_count=3)
            await backend.ack([done])
            await backend.retry(failing, delay=60, error="ValueError: later")
            letter = await backend.bury(poison, error="ValueError: poison")
            [in_flight] = await self.receive_some(backend, jobs, max_count=1)
            await backend.state_write("pets", "p1", StateWrite.set({"n": 1}), trace_id="t")
            assert await backend.claim_tick("report", 1_767_603_600.0)
            if ending == "crash":
                path = crash_copy(path, tmp_path / "crashed")
        mock_clock.jump(1)
        async with opened(path, clock) as backend:
            assert await backend.depth() == {
                audit.key: QueueDepth(ready=5),
                jobs.key: QueueDepth(ready=1, leased=1, delayed=1, dead=1),
                watcher.key: QueueDepth(ready=1),
            }
            [ready] = await self.receive_some(backend, jobs)
            assert (ready.envelope.data, ready.attempt) == (4, 1)
            await backend.ack([ready])
            assert datas(await self.receive_all(backend, audit)) == [0, 1, 2, 3, 4]
            [event] = await self.receive_some(backend, watcher)
            assert event.envelope.data["value"] == {"n": 1}
            assert await backend.state_get("pets", "p1") == {"n": 1}
            assert await backend.dead_letters() == [letter]
            assert await backend.claim_tick("report", 1_767_603_600.0) is False
            assert await backend.last_tick("report") == 1_767_603_600.0
            # The lease taken before the restart still runs its course, then redelivers.
            assert await self.receive_now(backend, jobs) == []
            mock_clock.jump(30)
            [lost] = await self.receive_some(backend, jobs)
            assert (lost.envelope, lost.attempt) == (in_flight.envelope, 2)
            # The retry timer set before the restart fires at its time, not earlier.
            mock_clock.jump(28.5)
            assert await self.receive_now(backend, jobs) == []
            mock_clock.jump(1)
            [retried] = await self.receive_some(backend, jobs)
            assert (retried.envelope, retried.attempt) == (failing.envelope, 2)
            assert await backend.redrive([letter.id]) == 1
            [again] = await self.receive_some(backend, jobs)
            assert (again.envelope, again.attempt) == (poison.envelope, 1)

    async def test_a_rolled_back_batch_leaves_no_trace(
        self, tmp_path: Path, clock: WallClock, mock_clock: MockClock
    ) -> None:
        # A state update that fails is rolled back alone; its neighbours in the same group
        # commit are kept, and nothing of it (value or event) reaches the file.
        path = tmp_path / "motet.db"
        watcher = sub(topic=state_topic("n"), step="watcher")
        jobs = sub()
        async with opened(path, clock) as backend:
            await backend.declare([watcher, jobs])
            await backend.state_write("n", "k", StateWrite.set({"name": "Rex"}), trace_id="t")
            await backend.ack(await self.receive_some(backend, watcher))
            outcomes: list[str] = []

            async def bad_update() -> None:
                with pytest.raises(ValueError, match="name"):
                    await backend.state_write(
                        "n",
                        "k",
                        StateWrite.update([{"op": "increment", "path": "name"}]),
                        trace_id="t",
                    )
                outcomes.append("bad")

            async def publish(i: int) -> None:
                await backend.publish([env(i)])
                outcomes.append("ok")

            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(publish, i)
                nursery.start_soon(bad_update)
            assert sorted(outcomes) == ["bad"] + ["ok"] * 5
        async with opened(path, clock) as backend:
            assert await backend.state_get("n", "k") == {"name": "Rex"}
            assert await self.receive_now(backend, watcher) == []
            assert sorted(datas(await self.receive_all(backend, jobs))) == [0, 1, 2, 3, 4]


CHILD = textwrap.dedent(
    """
    import sys
    import trio
    from motet._clock import WallClock
    from motet._envelope import Envelope, QueueOptions, Subscription
    from motet.backends import SqliteOptions
    from motet.backends._sqlite import SqliteBackend

    JOBS = Subscription("jobs", "worker", QueueOptions(lease=600))

    async def main(path, synchronous):
        backend = SqliteBackend(path, SqliteOptions(synchronous=synchronous))
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.run, WallClock())
            await backend.declare([JOBS])

            async def producer(k):
                for i in range(100_000):
                    batch = [Envelope("jobs", {"k": k, "i": i, "j": j}, "t") for j in range(3)]
                    await backend.publish(batch)
                    print("P", *(e.id for e in batch), flush=True)

            async def consumer():
                while True:
                    deliveries = await backend.receive(JOBS, 20)
                    print("T", *(d.envelope.id for d in deliveries), flush=True)
                    await backend.ack(deliveries)
                    print("A", *(d.envelope.id for d in deliveries), flush=True)

            for k in range(8):
                nursery.start_soon(producer, k)
            for _ in range(3):
                nursery.start_soon(consumer)

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_kill_9_loses_no_accepted_message(tmp_path: Path, synchronous: str) -> None:
    """A child publishes from 8 producers and drains with 3 consumers, printing ids once
    `publish` returned (P), before `ack` (T) and once `ack` returned (A); it is SIGKILLed
    mid-stream. Every accepted message must be still in the file unless an ack of it was
    under way, and no message whose ack returned may be back."""
    path = tmp_path / "motet.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    seen: dict[str, set[str]] = {"P": set(), "T": set(), "A": set()}
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [sys.executable, str(script), str(path), synchronous],
            stdout=-1,  # subprocess.PIPE
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None
        buffer = b""
        # Read to the end: lines still in the pipe after the kill were true when printed.
        async for chunk in process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, *ids = line.decode().split()
                seen[kind].update(ids)
            if len(seen["P"]) >= 1500 and len(seen["A"]) >= 300 and process.returncode is None:
                process.send_signal(signal.SIGKILL)  # while other calls are in flight
        assert await process.wait() == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        stored = [row[0] for row in conn.execute("SELECT id FROM messages")]
    conn.close()
    assert len(stored) == len(set(stored))
    missing = seen["P"] - seen["T"] - set(stored)
    assert not missing, f"{len(missing)} accepted messages lost"
    resurrected = seen["A"] & set(stored)
    assert not resurrected, f"{len(resurrected)} acknowledged messages came back"
    async with opened(path, WallClock()) as backend:
        assert (await backend.depth())["worker@jobs"].pending == len(stored)
