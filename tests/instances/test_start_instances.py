"""`motet start --instances N` as real processes on one SQLite file and one port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ..crash._motet import DEADLINE, Motet, query, records, wait_until, write_project

TOML = 'backend = "sqlite"\nlog_format = "json"\n'

STEPS = {
    "pid_step.py": """\
import os

from motet import http

config = {"name": "WhoServes", "triggers": [http("GET", "/pid")]}


async def handler(request, ctx):
    return {"status": 200, "body": {"pid": os.getpid(),
                                    "instance": os.environ.get("MOTET_INSTANCE")}}
""",
    "jobs_step.py": """\
from motet import http

config = {"name": "AcceptJob", "triggers": [http("POST", "/jobs/:id")], "enqueues": ["job"]}


async def handler(request, ctx):
    await ctx.emit("job", {"id": request.path_params["id"]})
    return {"status": 202, "body": {}}
""",
    "work_step.py": """\
import os

import trio

from motet import queue

from steps.record import record

config = {"name": "Work", "triggers": [queue("job")]}


async def handler(job, ctx):
    record(kind="work", id=job["id"], instance=os.environ["MOTET_INSTANCE"])
    await trio.sleep(0.05)  # long enough that work is leased when an instance dies
""",
    "tick_step.py": """\
from motet import cron

from steps.record import record

config = {"name": "Tick", "triggers": [cron("* * * * * *")]}


async def handler(_input, ctx):  # a cron handler's input is None; the tick is ctx.tick
    record(kind="tick", scheduled=ctx.tick["scheduled"])
""",
}

STARTED = re.compile(r"instance (\d+) started \(pid (\d+)\)")


def children(app: Motet) -> dict[int, int]:
    """instance -> pid of its latest start, from the parent's stderr."""
    found: dict[int, int] = {}
    for line in list(app.stderr):
        match = STARTED.search(line)
        if match:
            found[int(match[1])] = int(match[2])
    return found


def serving(app: Motet, count: int) -> str:
    """Wait for `count` "runtime started" lines; the shared URL."""
    urls = wait_until(
        lambda: len(app.started_urls()) >= count and app.started_urls(),
        f"{count} instances to serve",
    )
    assert len(set(urls)) == 1, urls  # one port for all
    return str(urls[0])


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def fresh_connection_get(url: str) -> dict[str, object]:
    # A new connection per request: the kernel hands each to whichever instance accepts.
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
        body: dict[str, object] = client.get(f"{url}/pid", timeout=DEADLINE).json()
        return body


def test_instances_share_the_port_the_queue_and_the_cron(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", TOML, STEPS)
    app = Motet(root, "start", "--port", "0", "--instances", "2")
    try:
        url = serving(app, 2)
        pids = children(app)
        assert sorted(pids) == [1, 2]

        served_by: Counter[tuple[object, object]] = Counter()

        def both_accepted() -> bool:
            # Whichever instance wakes first takes a connection: a burst can go to one
            # alone while the other is busy (a tick, a collection), so burst until both did.
            with ThreadPoolExecutor(4) as pool:
                served = list(pool.map(lambda _: fresh_connection_get(url), range(20)))
            served_by.update((body["instance"], body["pid"]) for body in served)
            return len(served_by) == 2

        wait_until(both_accepted, "both instances to accept connections", interval=0)
        assert {(str(i), pid) for i, pid in pids.items()} >= set(served_by), served_by

        with httpx.Client() as client, ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda i: client.post(f"{url}/jobs/j{i}", timeout=DEADLINE).status_code,
                    range(200),
                )
            )
        assert set(codes) == {202}
        wanted = {f"j{i}" for i in range(200)}
        wait_until(
            lambda: wanted <= {r["id"] for r in records(root) if r["kind"] == "work"},
            "200 jobs to be handled",
        )
        wait_until(
            lambda: len({r["scheduled"] for r in records(root) if r["kind"] == "tick"}) >= 3,
            "3 cron ticks",
        )

        app.signal(signal.SIGTERM)
        assert app.wait() == 0, app.output()
        assert all(gone(pid) for pid in pids.values())
    finally:
        app.close()
    work = [r for r in records(root) if r["kind"] == "work"]
    handled = Counter(r["id"] for r in work)
    assert set(handled.values()) == {1}, [k for k, n in handled.items() if n > 1]
    assert {r["instance"] for r in work} == {"1", "2"}
    ticks = Counter(r["scheduled"] for r in records(root) if r["kind"] == "tick")
    assert set(ticks.values()) == {1}, ticks  # once per tick across instances
    # Every log line says which instance wrote it.
    logs = [json.loads(line) for line in app.stdout if line.startswith("{")]
    assert logs and {log.get("instance") for log in logs} == {1, 2}
    assert "motet: stopping 2 instances" in "\n".join(app.stderr)


def test_a_killed_instance_is_restarted_and_instances_stop_when_the_parent_dies(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "app", TOML, STEPS)
    app = Motet(root, "start", "--port", "0", "--instances", "2")
    try:
        url = serving(app, 2)
        first = children(app)
        app_killed = first[1]
        os.kill(app_killed, signal.SIGKILL)
        app.wait_stderr(
            f"instance 1 (pid {app_killed}) was killed by SIGKILL unexpectedly; "
            "restarting it in 0.5 s"
        )
        # The port never closed: while instance 1 is down, the others take every connection.
        served = {fresh_connection_get(url)["pid"] for _ in range(10)}
        assert app_killed not in served
        wait_until(
            lambda: children(app).get(1) not in (None, app_killed), "instance 1 to start again"
        )
        serving(app, 3)
        assert fresh_connection_get(url)["pid"] in (children(app)[1], children(app)[2])

        # The supervisor itself dies: each instance sees its pipe close and stops.
        app.kill9()
        remaining = list(children(app).values())
        wait_until(
            lambda: all(gone(pid) for pid in remaining),
            "the instances to stop after their parent died",
        )
    finally:
        app.close()
    assert "the supervising process is gone; stopping" in "\n".join(app.stderr)


CRASHES_ON_START = """\
import os

if os.environ.get("MOTET_INSTANCE"):  # only the instances, not the parent's check
    os._exit(3)

from motet import http

config = {"name": "Fragile", "triggers": [http("GET", "/fragile")]}


async def handler(request, ctx):
    return {"status": 200, "body": {}}
"""


def test_instances_that_keep_dying_make_the_parent_exit_with_an_error(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", TOML, {"fragile_step.py": CRASHES_ON_START})
    app = Motet(root, "start", "--port", "0", "--instances", "2")
    try:
        assert app.wait() == 1, app.output()
    finally:
        app.close()
    assert "restarting it in 0.5 s" in "\n".join(app.stderr)
    assert app.stderr[-1].startswith(
        "motet: error: instances keep dying: 6 unexpected exits within 60 s (last: instance "
    ), app.stderr[-1]
    assert app.stderr[-1].endswith("stopped all instances")


def test_a_port_in_use_is_reported_once_before_any_instance_starts(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", TOML, STEPS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = Motet(root, "start", "--port", str(port), "--instances", "3")
        try:
            assert app.wait() == 1
        finally:
            app.close()
    assert app.stderr == [
        f"motet: error: cannot listen on 127.0.0.1:{port}: Address already "
        "in use; choose another port or host (port 0 picks a free one)"
    ]


def test_a_public_bind_without_a_token_is_refused_before_any_instance_starts(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "app", TOML, STEPS)
    app = Motet(root, "start", "--host", "0.0.0.0", "--port", "0", "--instances", "2")
    try:
        assert app.wait() == 1
    finally:
        app.close()
    assert len(app.stderr) == 1 and "without an operator token" in app.stderr[0], app.stderr


def test_the_memory_backend_is_refused_for_several_instances(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", TOML, STEPS)
    app = Motet(root, "start", "--port", "0", "--backend", "memory", "--instances", "2")
    try:
        assert app.wait() == 2
    finally:
        app.close()
    assert len(app.stderr) == 1, app.stderr
    assert app.stderr[0].startswith(
        "motet: error: --instances 2 needs a backend the "
        "processes share: sqlite (the default) or redis;"
    )


def test_work_leased_by_a_killed_instance_is_done_by_the_others_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    toml = TOML + '\n[queues."job"]\nlease = 2\n'  # a killed holder's leases end quickly
    root = write_project(tmp_path / "app", toml, STEPS)
    app = Motet(root, "start", "--port", "0", "--instances", "2")
    accepted: set[str] = set()
    in_flight: set[str] = set()
    try:
        url = serving(app, 2)
        victim = children(app)[1]
        lock = threading.Lock()

        def publish(client: httpx.Client, job: str) -> None:
            try:
                ok = client.post(f"{url}/jobs/{job}", timeout=DEADLINE).status_code == 202
            except httpx.HTTPError:
                return  # sent to the victim as it died: not accepted
            with lock:
                if ok:
                    accepted.add(job)
                if len(accepted) == 150 and not in_flight:
                    os.kill(victim, signal.SIGKILL)
                    # Read at once, within the 2 s lease: the victim's leases are there.
                    in_flight.update(
                        row[0]
                        for row in query(
                            root,
                            "SELECT json_extract(envelope, '$.data.id') FROM messages "
                            "WHERE state = 'leased'",
                        )
                    )

        with httpx.Client() as client, ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: publish(client, f"k{i}"), range(300)))
        assert in_flight, "the victim was killed with nothing leased: the test proved nothing"
        wait_until(
            lambda: accepted <= {r["id"] for r in records(root) if r["kind"] == "work"},
            "every accepted job to be handled",
        )
        app.signal(signal.SIGTERM)
        assert app.wait() == 0, app.output()
    finally:
        app.close()
    handled = Counter(r["id"] for r in records(root) if r["kind"] == "work")
    twice = {job for job, n in handled.items() if n > 1}
    assert twice <= in_flight, twice - in_flight
