"""Graceful shutdown of `motet start`, as an operator sees it: a real process, a real
socket, the sqlite backend in a temporary folder, and SIGTERM while work is in flight."""

from __future__ import annotations

import http.client
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from ._project import DEADLINE, Motet, get_json, has_started, open_gate, wait_until, write_project


def _post_in_background(url: str, results: dict[str, Any], key: str) -> threading.Thread:
    def post() -> None:
        try:
            results[key] = httpx.post(url, timeout=DEADLINE)
        except httpx.HTTPError as exc:
            results[key] = exc

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def test_sigterm_lets_requests_and_handlers_in_flight_finish_and_loses_nothing(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path / "app")
    app = Motet(root, "start", "--port", "0")
    try:
        url = app.started()
        # Three orders: Ship (concurrency 1) starts slow-a and waits at its gate; slow-b and
        # slow-c are queued behind it.
        for order_id in ("slow-a", "slow-b", "slow-c"):
            r = httpx.post(f"{url}/orders", json={"id": order_id, "qty": 1}, timeout=DEADLINE)
            assert r.status_code == 201
        wait_until(lambda: has_started(root, "ship-slow-a"), "Ship to start slow-a")
        # Two requests whose handlers wait at their gate.
        results: dict[str, Any] = {}
        threads = [_post_in_background(f"{url}/slow/{i}", results, i) for i in ("r1", "r2")]
        wait_until(
            lambda: has_started(root, "request-r1") and has_started(root, "request-r2"),
            "both slow requests to be in their handlers",
        )

        app.signal(signal.SIGTERM)
        app.wait_stderr("stopping")
        assert app.process.poll() is None  # still draining
        open_gate(root, "requests.open")
        for thread in threads:
            thread.join(DEADLINE)
        for key in ("r1", "r2"):
            response = results[key]
            assert isinstance(response, httpx.Response), response
            assert response.status_code == 200 and response.json() == {"id": key}
        assert app.process.poll() is None  # Ship is still running slow-a
        open_gate(root, "ship.open")
        assert app.wait() == 0
    finally:
        app.close()
    # Once the stop began nothing more was leased: only slow-a ran in the first process.
    assert not has_started(root, "ship-slow-b") and not has_started(root, "ship-slow-c")
    assert not has_started(root, "ship-r1") and not has_started(root, "ship-r2")
    assert any(r.get("msg") == "motet runtime stopped" for r in app.records())

    # Everything answered with a 2xx is still there: a restart ships the rest at once (the
    # messages were never leased, or handed back with the lease cut to zero).
    again = Motet(root, "start", "--port", "0")
    try:
        url = again.started()
        for order_id in ("slow-a", "slow-b", "slow-c", "r1", "r2"):
            wait_until(
                lambda o=order_id: get_json(f"{url}/orders/{o}") == (200, {"qty": 1, "done": True}),
                f"order {order_id} to be shipped",
            )
        again.signal(signal.SIGINT)
        assert again.wait() == 0
    finally:
        again.close()


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app")
    app = Motet(root, "start", "--port", "0")
    try:
        url = app.started()
        results: dict[str, Any] = {}
        thread = _post_in_background(f"{url}/slow/r1", results, "r1")
        r = httpx.post(f"{url}/orders", json={"id": "slow-a", "qty": 1}, timeout=DEADLINE)
        assert r.status_code == 201
        wait_until(
            lambda: has_started(root, "request-r1") and has_started(root, "ship-slow-a"),
            "a request and a queue handler to be running",
        )
        app.signal(signal.SIGTERM)
        app.wait_stderr("stopping")
        app.signal(signal.SIGTERM)
        # Neither gate is ever opened: only the second signal can end the process.
        assert app.wait() == 128 + signal.SIGTERM
        app.wait_stderr("second signal")
        thread.join(DEADLINE)
        assert not isinstance(results["r1"], httpx.Response) or results["r1"].status_code >= 500
    finally:
        app.close()


def test_sigint_with_nothing_in_flight_stops_cleanly(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app")
    app = Motet(root, "start", "--port", "0")
    try:
        url = app.started()
        assert get_json(f"{url}/orders/none")[0] == 404
        app.signal(signal.SIGINT)
        assert app.wait() == 0
        assert not any("Traceback" in line for line in app.stderr)
    finally:
        app.close()


# -- SIGTERM under keep-alive load: nothing handled goes unanswered ------------------------

HIT_STEPS = {
    "steps/__init__.py": "",
    "steps/hit_step.py": """\
import os
from pathlib import Path

from motet import http

HANDLED = Path(os.environ["MOTET_TEST_GATES"]) / "handled"

config = {"name": "Hit", "triggers": [http("POST", "/hit/:id")]}


async def handler(request, ctx):
    (HANDLED / request.path_params["id"]).touch()  # the request was run
    return {"status": 200, "body": {"id": request.path_params["id"]}}
""",
}
CLIENTS = 8
# Runs per test; bench/sigterm_runs.py sets more.
SIGTERM_RUNS = int(os.environ.get("MOTET_SIGTERM_RUNS", "10"))


def _keep_alive_client(
    port: int, name: str, answered: dict[str, int], cut: dict[str, str], done: threading.Event
) -> None:
    """POSTs on one keep-alive connection (reconnecting when the server closes it) until
    the server is gone. `answered`: id -> status; `cut`: id -> the error instead of one."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    n = 0
    while not done.is_set():
        request_id = f"{name}-{n}"
        n += 1
        try:
            connection.request(
                "POST",
                f"/hit/{request_id}",
                body=b"{}",
                headers={"content-type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            answered[request_id] = response.status
        except ConnectionRefusedError:
            return  # the server is gone
        except (OSError, http.client.HTTPException) as exc:
            cut[request_id] = repr(exc)
            connection.close()
    connection.close()


def _one_sigterm_run(root: Path, load: int) -> tuple[set[str], dict[str, str], int]:
    """Start, load with keep-alive clients, SIGTERM mid-load. Returns the ids that were run
    but not answered 200, the cut requests, and how many were answered."""
    write_project(root, files=HIT_STEPS)
    (root / "gates" / "handled").mkdir()
    app = Motet(root, "start", "--port", "0", "--backend", "memory")
    answered: dict[str, int] = {}
    cut: dict[str, str] = {}
    done = threading.Event()
    try:
        port = int(app.started().rsplit(":", 1)[1])
        clients = [
            threading.Thread(
                target=_keep_alive_client, args=(port, f"c{i}", answered, cut, done), daemon=True
            )
            for i in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        wait_until(lambda: len(answered) >= load, f"{load} answered requests")
        app.signal(signal.SIGTERM)
        assert app.wait() == 0
    finally:
        done.set()
        app.close()
    for client in clients:
        client.join(DEADLINE)
    handled = set(os.listdir(root / "gates" / "handled"))
    ok = {request_id for request_id, status in answered.items() if status == 200}
    assert ok <= handled  # a 200 is only ever the answer of a request that was run
    return handled - ok, cut, len(answered)


def test_sigterm_under_keep_alive_load_leaves_nothing_handled_but_unanswered(
    tmp_path: Path,
) -> None:
    """Before: requests read in the ~50 ms after SIGTERM were closed without an answer, and
    some of them had been run (a retrying client duplicates them, a non-retrying one
    believes a committed request failed). Each run sends SIGTERM at a different load."""
    report = []
    for run in range(SIGTERM_RUNS):
        lost, cut, count = _one_sigterm_run(tmp_path / f"run{run}", load=100 + 37 * run)
        report.append((run, count, sorted(lost), len(cut)))
    assert all(not lost for _, _, lost, _ in report), report


def test_with_instances_connections_arriving_while_draining_are_refused_at_once(
    tmp_path: Path,
) -> None:
    """With `--instances`, the parent holds the listening socket until every child has
    exited, so a connection queued after SIGTERM used to wait unanswered for the whole
    drain and then be reset. It is now answered 503 + Connection: close right away."""
    root = write_project(tmp_path / "app")
    app = Motet(root, "start", "--port", "0", "--instances", "2")
    try:
        url = app.started(2)
        results: dict[str, Any] = {}
        thread = _post_in_background(f"{url}/slow/r1", results, "r1")
        wait_until(lambda: has_started(root, "request-r1"), "the slow request to be running")
        app.signal(signal.SIGTERM)
        app.wait_stderr("stopping 2 instances")
        wait_until(
            lambda: sum("stopping: finishing" in line for line in app.stderr) == 2,
            "both instances to start draining",
        )
        # The slow request keeps its instance draining until the gate opens; a new
        # connection must be answered before that.
        late = httpx.post(f"{url}/orders", json={"id": "late", "qty": 1}, timeout=DEADLINE)
        assert late.status_code == 503
        assert late.headers["connection"] == "close" and late.headers["retry-after"] == "1"
        assert late.json()["type"] == "urn:motet:problem:shutting-down"
        assert not (root / "gates" / "requests.open").exists()
        open_gate(root, "requests.open")
        thread.join(DEADLINE)
        assert isinstance(results["r1"], httpx.Response), results["r1"]
        assert results["r1"].status_code == 200
        assert results["r1"].headers["connection"] == "close"
        assert app.wait() == 0
    finally:
        app.close()
