"""Delayed emits and idempotency keys across 3 real `motet start` processes on one
redis-server: a delayed message fires once, on whichever instance finds it due, never
before its time; the same key posted to all three at once makes one message."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ._cluster import StartCluster

DELAY = 1.5  # s

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
    # One job at a time per instance, each taking a moment: the 60 jobs come due together,
    # and an instance that leased them by the dozen could take them all before the other two
    # woke (it did, once, on a loaded machine), leaving "fires once" untested across instances.
    "fire_step.py": """\
import trio

from motet import queue

from steps.record import record

config = {"name": "Fire", "triggers": [queue("later", concurrency=1, prefetch=0)]}


async def handler(job, ctx):
    record(kind="fired", id=job["id"], now=ctx.now().timestamp(), message=ctx.message.id)
    await trio.sleep(0.02)
""",
}


def test_the_same_delayed_job_posted_to_every_instance_fires_once(
    cluster: StartCluster,
) -> None:
    app = cluster(STEPS)
    ids = [f"j{i}" for i in range(60)]

    def post(pair: tuple[str, int]) -> tuple[str, str, float]:
        job, instance = pair
        response = app.client.post(f"{app.urls[instance]}/later/{job}")
        assert response.status_code == 202, response.text
        body = response.json()
        return job, body["id"], body["at"]

    with ThreadPoolExecutor(12) as pool:  # each job to all three instances at once
        answers = list(pool.map(post, [(job, i) for job in ids for i in range(3)]))
    first_at = {job: min(at for j, _, at in answers if j == job) for job in ids}
    by_job: dict[str, set[str]] = {}
    for job, sent, _ in answers:
        by_job.setdefault(job, set()).add(sent)
    assert all(len(sent) == 1 for sent in by_job.values()), by_job

    app.wait_handled("fired", ids)
    time.sleep(DELAY + 1.0)  # a repeat would have fired by now
    assert app.stop() == [0, 0, 0], app.output()
    fired = app.handled("fired")
    counts = Counter(r["id"] for r in fired)
    assert [job for job, n in counts.items() if n > 1] == [], counts
    assert {r["message"] for r in fired} == {next(iter(s)) for s in by_job.values()}
    # Never early: not before its delay after the first post's emit (clocks agree on a host).
    assert all(r["now"] >= first_at[r["id"]] + DELAY - 0.01 for r in fired), fired
    assert len({r["pid"] for r in fired}) >= 2, "fired on one instance only"
