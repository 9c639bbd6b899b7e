"""A full disk is a condition of the backend, not a crash (issue 11, item 9).

Before, SQLITE_FULL made the step actor's ack and lease writes raise, the supervisor
restarted it 6 times in 63 ms and gave up, and the process exited. Now the actor's loops
back off and retry with the cause in the log and in health, HTTP reads are still served and
HTTP writes get 503, and everything carries on without a restart once space is back.

SQLITE_FULL is injected at the writer (its transaction raises the error SQLite raises for a
full disk), which works unprivileged on any machine. Real time: SQLite works in threads.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from motet._logging import LogRecord
from motet.backends._sqlite import SqliteBackend
from motet.backends._sqlite_writer import SqliteWriter

from ..observe._app import http_step, open_observed, queue_step

DEADLINE = 20.0  # s of real time for any condition of the running runtime to come true


class Disk:
    """Makes every write transaction of the writer fail as SQLite does on a full disk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.refused = 0
        real = SqliteWriter._transaction

        def transaction(writer: SqliteWriter, tx: Any, work: Any) -> Any:
            if self.full:
                self.refused += 1
                error = sqlite3.OperationalError("database or disk is full")
                error.sqlite_errorcode = sqlite3.SQLITE_FULL
                error.sqlite_errorname = "SQLITE_FULL"
                raise error
            return real(writer, tx, work)

        monkeypatch.setattr(SqliteWriter, "_transaction", transaction)


async def until(condition: Any, what: str) -> None:
    """Poll `condition()` (the runtime retries on real time) until true, or fail."""
    with trio.move_on_after(DEADLINE):
        while not condition():
            await trio.sleep(0.01)
        return
    pytest.fail(f"never happened within {DEADLINE} s: {what}")


async def test_a_full_disk_is_waited_out_and_nothing_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    gate = trio.Event()
    handled: list[int] = []

    async def work(data: Any, ctx: Any) -> None:
        handled.append(data["n"])
        if data["n"] == 0:
            await gate.wait()

    async def write(request: Any, ctx: Any) -> Any:
        await ctx.emit("work", {"n": 99})
        return {"status": 201, "body": {}}

    async def read(request: Any, ctx: Any) -> Any:
        return {"status": 200, "body": {"count": await ctx.state.get("n", "k")}}

    steps = [
        queue_step("Work", "work", work, options={"concurrency": 1}),
        http_step("Write", "POST", "/w", write, enqueues=["work"]),
        http_step("Read", "GET", "/r", read),
    ]
    logs: list[LogRecord] = []
    backend = SqliteBackend(tmp_path / "motet.db")
    async with open_observed(steps, backend=backend) as app:
        runtime = app.runtime
        assert runtime.hub is not None and runtime.publisher is not None
        runtime.hub.add_sink(logs.append)
        for n in range(5):
            await runtime.publisher.publish("work", {"n": n}, trace_id="t" * 32, source="test")
        await until(lambda: handled == [0], "the first message is being handled")

        disk.full = True
        gate.set()  # its ack now fails, and so does the next lease

        def outage_logged(what: str) -> bool:
            return any(
                r.message.startswith(f"backend unavailable: cannot {what}")
                and "SQLITE_FULL" in str(r.fields.get("error"))
                and str(tmp_path / "motet.db") in str(r.fields.get("error"))
                for r in logs
            )

        await until(lambda: outage_logged("acknowledge"), "the failed ack is logged")
        await until(lambda: outage_logged("lease"), "the failed lease is logged")
        health = (await app.http.get("/_motet/health")).json()
        assert health["status"] == "degraded"
        assert "SQLITE_FULL" in health["backend_write_failure"]
        refused = await app.http.post("/w", json={})
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "backend-unavailable" in refused.json()["type"]
        assert (await app.http.get("/r")).status_code == 200  # reads are still served
        assert handled == [0]
        before = disk.refused
        await until(lambda: disk.refused >= before + 3, "the loops keep retrying")

        disk.full = False
        await until(lambda: sorted(handled) == [0, 1, 2, 3, 4], "the rest is handled")
        await app.settle()
        health = (await app.http.get("/_motet/health")).json()
        assert health["status"] == "ok" and health["backend_write_failure"] is None
        assert health["pending"] == 0
        assert runtime.supervisor is not None
        assert [c.restarts for c in runtime.supervisor.which_children()] == [0]
    assert sorted(handled) == [0, 1, 2, 3, 4]  # the first one once: its ack was kept
    assert any(r.message.startswith("backend available again") for r in logs)
