"""kill -9 of a real `motet start` (SQLite) while a delayed emit waits: after a restart past
its time the message fires once, even with two processes sharing the file, and never
before its time. An idempotency key taken before the kill still holds after it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from ._motet import DEADLINE, Motet, eventually, query, records, wait_until, write_project

DELAY = 2.0  # s

STEPS = {
    "later_step.py": f"""\
from motet import http

config = {{"name": "Later", "triggers": [http("POST", "/later/:id")], "enqueues": ["later"]}}


async def handler(request, ctx):
    job_id = request.path_params["id"]
    at = ctx.now().timestamp()  # no later than the emit's own clock reading
    sent = await ctx.emit("later", {{"id": job_id}}, delay={DELAY}, key=job_id)
    return {{"status": 202, "body": {{"id": sent, "at": at}}}}
""",
    "fire_step.py": """\
from motet import queue

from steps.record import record

config = {"name": "Fire", "triggers": [queue("later")]}


async def handler(job, ctx):
    record(kind="fired", id=job["id"], now=ctx.now().timestamp(), attempt=ctx.message.attempt)
""",
}


def fired(root: Path) -> list[dict[str, object]]:
    return [r for r in records(root) if r.get("kind") == "fired"]


def test_a_delayed_emit_survives_kill_9_and_fires_once_after_restart(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", 'backend = "sqlite"\nlog_format = "json"\n', STEPS)
    first = Motet(root, "start", "--port", "0")
    try:
        url = first.started()
        with httpx.Client(timeout=DEADLINE) as client:
            answer = client.post(f"{url}/later/j1").json()
            again = client.post(f"{url}/later/j1").json()  # the same key: the same message
        assert again["id"] == answer["id"]
        first.kill9()  # the message is waiting for its time
    finally:
        first.close()
    assert query(root, "SELECT id FROM scheduled") == [(answer["id"],)]
    assert fired(root) == []
    # Down until after its time; then two processes start on the same file.
    wait_until(lambda: time.time() > answer["at"] + DELAY + 0.5, "the due time to pass")
    workers = [Motet(root, "start", "--port", "0") for _ in range(2)]
    try:
        for worker in workers:
            worker.started()
        assert eventually(lambda: fired(root), DEADLINE), [w.output() for w in workers]
        with httpx.Client(timeout=DEADLINE) as client:  # the key outlived the kill
            repeat = client.post(f"{workers[1].started()}/later/j1").json()
        assert repeat["id"] == answer["id"]
        time.sleep(DELAY + 1.0)  # a second firing, or the repeat's, would show by now
        for worker in workers:
            worker.signal(signal.SIGINT)
            worker.wait()
    finally:
        for worker in workers:
            worker.close()
    [once] = fired(root)
    assert once["id"] == "j1" and once["attempt"] == 1, once
    assert float(str(once["now"])) >= answer["at"] + DELAY, (once, answer)
    assert query(root, "SELECT count(*) FROM scheduled") == [(0,)]
    assert query(root, "SELECT count(*) FROM messages") == [(0,)]
