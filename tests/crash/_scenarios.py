"""The kill -9 scenarios of the SQLite backend (and, for dead letters, Redis), sized by the
caller: small in tests/crash, full size in bench/crash_sqlite.py. Each runs real `motet start`
processes on a project written into `root` and returns what it measured; the callers assert
on it.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import httpx

from ._motet import DEADLINE, Motet, eventually, query, records, wait_until, write_project

TOML = """\
backend = "sqlite"
log_format = "json"

[queues."retry.me"]
max_retries = 1
retry_delay = {retry_delay_ms}

[queues."suicide"]
max_retries = {suicide_retries}
lease = 1
"""

STEPS = {
    "jobs_step.py": """\
from motet import http

config = {"name": "AcceptJob", "triggers": [http("POST", "/jobs/:topic/:id")],
          "enqueues": ["job", "retry.me", "suicide"]}


async def handler(request, ctx):
    job_id = request.path_params["id"]
    await ctx.emit(request.path_params["topic"], {"id": job_id})
    return {"status": 202, "body": {"id": job_id}}
""",
    "work_step.py": """\
from motet import queue

from steps.record import record

config = {"name": "Work", "triggers": [queue("job")]}


async def handler(job, ctx):
    record(kind="work", id=job["id"], attempt=ctx.message.attempt)
""",
    "retry_step.py": """\
from motet import queue

from steps.record import record

config = {"name": "RetryLater", "triggers": [queue("retry.me")]}


async def handler(job, ctx):
    attempt = ctx.message.attempt
    record(kind="retry", id=job["id"], attempt=attempt, now=ctx.now().timestamp())
    if attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
""",
    "suicide_step.py": """\
import os
import signal

from motet import queue

from steps.record import record

config = {"name": "KillsItself", "triggers": [queue("suicide")]}


async def handler(job, ctx):
    record(kind="suicide", id=job["id"], attempt=ctx.message.attempt)
    os.kill(os.getpid(), signal.SIGKILL)
""",
}


def make_project(root: Path, *, retry_delay: float = 3.0, suicide_retries: int = 2) -> Path:
    toml = TOML.format(retry_delay_ms=int(retry_delay * 1000), suicide_retries=suicide_retries)
    return write_project(root, toml, STEPS)


def handled(root: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in records(root) if r.get("kind") == kind]


def leased_ids(root: Path, step: str) -> set[str]:
    """Ids of the messages leased (in flight) to `step` in the file as it is now."""
    rows = query(
        root,
        "SELECT json_extract(envelope, '$.data.id') FROM messages "
        "WHERE subscription LIKE ? AND state = 'leased'",
        f"%{step}%",
    )
    return {row[0] for row in rows}


def post(client: httpx.Client, url: str, topic: str, job_id: str) -> bool:
    """True when the job was accepted (2xx); False when the request failed."""
    try:
        response = client.post(f"{url}/jobs/{topic}/{job_id}", timeout=DEADLINE)
    except httpx.HTTPError:
        return False
    return 200 <= response.status_code < 300


# -- 1. N accepted jobs, kill -9 at a random moment, restart ------------------------------


@attrs.frozen
class LostAndDuplicated:
    accepted: int
    emitted: int  # of them, accepted by `motet emit` (exit 0) rather than over HTTP
    killed_after: int  # jobs accepted when the kill came
    in_flight: set[str]  # leased at the moment of the kill
    lost: set[str]
    duplicated: set[str]
    unexpected_duplicates: set[str]  # handled twice without being in flight at the kill
    strangers: set[str]  # handled but never posted
    seconds: float


def kill_during_work(
    root: Path, *, jobs: int, seed: int, emits: int = 2, workers: int = 16
) -> LostAndDuplicated:
    rng = random.Random(seed)
    began = time.monotonic()
    accepted: set[str] = set()
    posted: set[str] = set()
    lock = threading.Lock()
    kill_at = rng.randint(max(1, jobs // 20), jobs)
    kill_delay = rng.uniform(0.0, 0.5)
    killed = threading.Event()
    first = Motet(root, "start", "--port", "0")
    try:
        url = first.started()

        slots = threading.BoundedSemaphore(workers * 2)  # requests queued or in flight

        def publish(client: httpx.Client, job_id: str) -> None:
            try:
                if post(client, url, "job", job_id):
                    with lock:
                        accepted.add(job_id)
                        due = len(accepted) == kill_at
                    if due:
                        time.sleep(kill_delay)  # the random moment, not a wait for work
                        first.kill9()
                        killed.set()
            finally:
                slots.release()

        def emit(job_id: str) -> None:
            with lock:
                posted.add(job_id)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "motet.cli",
                    "--project",
                    str(root),
                    "emit",
                    "job",
                    f'{{"id": "{job_id}"}}',
                ],
                capture_output=True,
                timeout=DEADLINE,
            )
            if done.returncode == 0:
                with lock:
                    accepted.add(job_id)

        with httpx.Client() as client, ThreadPoolExecutor(workers) as pool:
            for i in range(emits):
                pool.submit(emit, f"e{i}")
            n = 0
            while not killed.is_set() and n < jobs * 2:
                if not slots.acquire(timeout=DEADLINE):
                    raise AssertionError("publishers stuck")
                with lock:
                    posted.add(f"a{n}")
                pool.submit(publish, client, f"a{n}")
                n += 1
        assert killed.is_set(), f"only {len(accepted)} of {n} posts accepted, no kill came"
    finally:
        first.close()
    killed_after = len(accepted)
    in_flight = leased_ids(root, "Work")

    second = Motet(root, "start", "--port", "0")
    try:
        url = second.started()
        with httpx.Client() as client, ThreadPoolExecutor(workers) as pool:
            fresh = iter(range(10**9))
            while len(accepted) < jobs + emits:
                need = jobs + emits - len(accepted)
                ids = [f"b{next(fresh)}" for _ in range(need)]
                posted.update(ids)
                for job_id, ok in zip(
                    ids, pool.map(lambda i: post(client, url, "job", i), ids), strict=True
                ):
                    if ok:
                        accepted.add(job_id)
        wait_until(
            lambda: accepted <= {r["id"] for r in handled(root, "work")},
            f"all {len(accepted)} accepted jobs to be handled",
            deadline=DEADLINE + jobs / 100,
        )
        second.signal(signal.SIGINT)
        second.wait()
    finally:
        second.close()
    counts = Counter(r["id"] for r in handled(root, "work"))
    duplicated = {job_id for job_id, n in counts.items() if n > 1}
    return LostAndDuplicated(
        accepted=len(accepted),
        emitted=sum(1 for i in accepted if i.startswith("e")),
        killed_after=killed_after,
        in_flight=in_flight,
        lost=accepted - set(counts),
        duplicated=duplicated,
        unexpected_duplicates=duplicated - in_flight,
        strangers=set(counts) - posted,
        seconds=time.monotonic() - began,
    )


# -- 2. kill -9 right after a 2xx ----------------------------------------------------------


@attrs.frozen
class AfterAccept:
    trials: int
    missing_after_kill: list[str]  # neither queued nor handled in the file after the kill
    lost: list[str]  # never handled after the restarts
    seconds: float


def kill_after_accept(root: Path, *, trials: int, chains: int = 2) -> AfterAccept:
    """`trials` times: start a worker, get a 2xx for one job, kill -9 at once, look for the
    job in the file; then a last worker must handle every job. The trials run in `chains`
    independent projects at once (one start-post-kill cycle is mostly process start-up)."""
    began = time.monotonic()
    shares = [range(k, trials, chains) for k in range(chains)]
    results: list[tuple[list[str], list[str]]] = []
    with ThreadPoolExecutor(chains) as pool:
        futures = [
            pool.submit(_trial_chain, make_project(root / f"chain{k}"), share)
            for k, share in enumerate(shares)
        ]
        results = [future.result() for future in futures]
    missing = sorted(job for chain_missing, _ in results for job in chain_missing)
    lost = sorted(job for _, chain_lost in results for job in chain_lost)
    return AfterAccept(trials, missing, lost, time.monotonic() - began)


def _trial_chain(root: Path, trials: range) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    for trial in trials:
        job_id = f"t{trial}"
        worker = Motet(root, "start", "--port", "0")
        try:
            url = worker.started()
            with httpx.Client() as client:
                assert post(client, url, "job", job_id), f"trial {trial}: no 2xx"
            worker.kill9()
        finally:
            worker.close()
        queued = query(
            root,
            "SELECT count(*) FROM messages WHERE json_extract(envelope, '$.data.id') = ?",
            job_id,
        )[0][0]
        if not queued and job_id not in {r["id"] for r in handled(root, "work")}:
            missing.append(job_id)
    wanted = {f"t{trial}" for trial in trials}
    last = Motet(root, "start", "--port", "0")
    try:
        last.started()
        eventually(lambda: wanted <= {r["id"] for r in handled(root, "work")}, DEADLINE)
        last.signal(signal.SIGINT)
        last.wait()
    finally:
        last.close()
    return missing, sorted(wanted - {r["id"] for r in handled(root, "work")})


# -- 3. a retry survives a kill ------------------------------------------------------------


@attrs.frozen
class RetryAfterKill:
    first_at: float  # epoch s of attempt 1 (the handler's ctx.now())
    due: float  # the retry time stored in the file, read after the kill
    fired_at: float | None  # epoch s of attempt 2, None if it never came
    attempts: int


def _state_of(root: Path, job_id: str) -> str | None:
    rows = query(
        root, "SELECT state FROM messages WHERE json_extract(envelope, '$.data.id') = ?", job_id
    )
    return str(rows[0][0]) if rows else None


def retry_survives_kill(root: Path, *, retry_delay: float, kill_after: float) -> RetryAfterKill:
    first = Motet(root, "start", "--port", "0")
    try:
        url = first.started()
        with httpx.Client() as client:
            assert post(client, url, "retry.me", "r1")
        wait_until(lambda: handled(root, "retry"), "the first attempt")
        # The handler records before it raises: the retry is stored a moment later.
        wait_until(lambda: _state_of(root, "r1") == "delayed", "the retry to be stored")
        time.sleep(kill_after)  # the scenario's kill moment, not a wait for work
        first.kill9()
    finally:
        first.close()
    [(due, state)] = query(
        root, "SELECT due, state FROM messages WHERE json_extract(envelope, '$.data.id') = 'r1'"
    )
    assert state == "delayed", state  # as stored before the kill: the kill lost nothing
    second = Motet(root, "start", "--port", "0")
    try:
        second.started()
        eventually(lambda: len(handled(root, "retry")) >= 2, retry_delay * 1.2 + DEADLINE)
        second.signal(signal.SIGINT)
        second.wait()
    finally:
        second.close()
    runs = handled(root, "retry")
    fired = runs[1]["now"] if len(runs) > 1 else None
    return RetryAfterKill(runs[0]["now"], due, fired, len(runs))


# -- 4. a handler that kills its own process ----------------------------------------------


@attrs.frozen
class SelfKill:
    deliveries: int  # times the handler ran (each one killed its process)
    dead_letters: int
    restarts: int
    settled: bool  # a dead letter exists and a last process ran a lease long without a kill


def handler_kills_itself(root: Path, *, attempts: int, max_restarts: int) -> SelfKill:
    """Restart the worker whenever it dies, up to `max_restarts` times, until the message
    is a dead letter; then check a live worker is left alone for over a lease."""
    restarts = 0
    settled = False
    # Published before any worker runs: the handler kills the process that serves HTTP.
    emit = subprocess.run(
        [
            sys.executable,
            "-m",
            "motet.cli",
            "--project",
            str(root),
            "emit",
            "suicide",
            '{"id": "s1"}',
        ],
        capture_output=True,
        timeout=DEADLINE,
    )
    assert emit.returncode == 0, emit.stderr
    end = time.monotonic() + DEADLINE + max_restarts * 5
    worker = Motet(root, "start", "--port", "0")
    try:
        while time.monotonic() < end:
            dead = query(root, "SELECT count(*) FROM dead_letters")[0][0]
            if dead:
                seen = len(handled(root, "suicide"))
                # Two leases of 1 s: a redelivery would have come and killed it.
                died = eventually(worker.process.poll, 2.5)  # poll(): the status once exited
                settled = not died and len(handled(root, "suicide")) == seen
                break
            if worker.process.poll() is not None:
                if restarts >= max_restarts:
                    break
                restarts += 1
                worker.close()
                worker = Motet(root, "start", "--port", "0")
            time.sleep(0.05)  # polling the file and the process, both external
    finally:
        worker.close()
    dead = query(root, "SELECT count(*) FROM dead_letters")[0][0]
    return SelfKill(len(handled(root, "suicide")), dead, restarts, settled and dead > 0)


# -- 5. dead letters survive a kill between "exhausted" and "stored" ---------------------

# Seed 003's queue settings, made quick: retries, then a dead-letter topic nobody reads.
DEAD_LETTER_TOML = """\
log_format = "json"
{backend}
[queues."message.sent"]
max_retries = 1
retry_delay = 10
lease = 3
concurrency = {messages}
dead_letter_queue = "message.failed"
"""

DEAD_LETTER_STEPS = {
    "burst_step.py": """\
import trio

from motet import http

config = {"name": "Burst", "triggers": [http("POST", "/burst/:n")],
          "enqueues": ["message.sent"]}


async def handler(request, ctx):
    n = int(request.path_params["n"])
    async with trio.open_nursery() as nursery:  # concurrent emits share commits
        for i in range(n):
            nursery.start_soon(ctx.emit, "message.sent", {"messageId": f"m{i}", "text": "hi"})
    return {"status": 202, "body": {"queued": n}}
""",
    "process_step.py": """\
from pathlib import Path

import trio

from motet import queue

from steps.record import record

config = {"name": "ProcessMessage", "triggers": [queue("message.sent")]}
GATE = Path(__file__).resolve().parent.parent / "gate.open"


def process_text(message):
    return message["items"]  # seed 003's bug: there are no items


async def handler(message, ctx):
    record(kind="process", id=message["messageId"], attempt=ctx.message.attempt)
    if ctx.message.attempt == 2:  # the last one: wait while the test freezes the backend
        while not GATE.exists():
            await trio.sleep(0.01)  # the app under test polls; the test never sleeps
    process_text(message)
""",
}

EXHAUSTED = "handler failed; attempts exhausted"


@attrs.frozen
class DeadLettersAfterKill:
    messages: int
    exhausted_before_kill: int  # "attempts exhausted" lines the killed process logged
    stored_at_kill: int  # dead letters in the store right after the kill
    lost: list[str]  # never dead-lettered
    duplicated: list[str]  # dead-lettered more than once
    without_traceback: int  # buried after a lost lease (no attempt raised)
    left_queued: int  # messages still queued at the end (sqlite only; else 0)
    seconds: float


def dead_letters_survive_kill(
    root: Path,
    *,
    messages: int,
    freeze: Callable[[], Callable[[], None]],
    redis_url: str | None = None,
) -> DeadLettersAfterKill:
    """Seed 003's configuration (`dead_letter_queue: message.failed`, no subscriber): every
    message fails. On its last attempt each handler waits at a gate; the test freezes the
    backend (`freeze()` returns the thaw), opens the gate, and once the process has logged
    "attempts exhausted" for every message (each burial now in flight, stuck on the frozen
    backend) kills it with -9, thaws, restarts, and counts the dead letters: each message
    exactly once, none lost to the subscriber-less topic or to the kill."""
    began = time.monotonic()
    backend = f'backend = "{redis_url}"' if redis_url else 'backend = "sqlite"'
    toml = DEAD_LETTER_TOML.format(backend=backend, messages=messages)
    write_project(root, toml, DEAD_LETTER_STEPS)
    first = Motet(root, "start", "--port", "0")
    try:
        url = first.started()
        with httpx.Client() as client:
            response = client.post(f"{url}/burst/{messages}", timeout=DEADLINE)
            assert response.status_code == 202, response.text
        wait_until(
            lambda: sum(1 for r in handled(root, "process") if r["attempt"] == 2) == messages,
            "every message's last attempt to start",
        )
        thaw = freeze()
        try:
            (root / "gate.open").touch()
            wait_until(
                lambda: (
                    sum(1 for r in first.log_records() if r.get("msg") == EXHAUSTED) >= messages
                ),
                "every message's 'attempts exhausted'",
            )
            first.kill9()
        finally:
            thaw()
    finally:
        first.close()  # the readers drain what the process wrote before it died
    exhausted = sum(1 for r in first.log_records() if r.get("msg") == EXHAUSTED)
    stored_at_kill = len(_dead_letters(root, redis_url))

    second = Motet(root, "start", "--port", "0")
    try:
        second.started()
        wait_until(
            lambda: len(_dead_letters(root, redis_url)) >= messages,
            f"{messages} dead letters",
            interval=0.2,
        )
        second.signal(signal.SIGINT)
        second.wait()
    finally:
        second.close()
    letters = _dead_letters(root, redis_url)
    counts = Counter(str(d["data"]["messageId"]) for d in letters)
    wanted = {f"m{i}" for i in range(messages)}
    left = 0 if redis_url else query(root, "SELECT count(*) FROM messages")[0][0]
    return DeadLettersAfterKill(
        messages=messages,
        exhausted_before_kill=exhausted,
        stored_at_kill=stored_at_kill,
        lost=sorted(wanted - set(counts)),
        duplicated=sorted(i for i, n in counts.items() if n > 1),
        without_traceback=sum(1 for d in letters if not d["traceback"]),
        left_queued=left,
        seconds=time.monotonic() - began,
    )


def sqlite_write_lock(root: Path) -> Callable[[], None]:
    """Hold the project file's write lock (as another process would): motet's writes wait
    on it. Returns the release."""
    conn = sqlite3.connect(root / ".motet" / "motet.db", timeout=DEADLINE, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")

    def release() -> None:
        conn.execute("ROLLBACK")
        conn.close()

    return release


def _dead_letters(root: Path, redis_url: str | None) -> list[dict[str, Any]]:
    """`motet dlq list --json`, as an operator would list them (the store, not the topic)."""
    args = ["--backend", redis_url] if redis_url else []
    done = subprocess.run(
        [sys.executable, "-m", "motet.cli", "--project", str(root), "dlq", "list", "--json", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
