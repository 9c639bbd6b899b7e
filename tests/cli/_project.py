"""A small project written into a temporary folder, and the `motet` command run on it as a
real process (stdout/stderr collected line by line, waited on with bounded deadlines).

The steps wait on *gate files* in `MOTET_TEST_GATES` rather than sleeping: a test opens a
gate (creates the file) when it wants a handler to finish, and reads `<name>.started`
marker files to know a handler is running. The tests never sleep to wait for work; they
poll for a condition of the external process under a real-time deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

DEADLINE = 30.0  # s: generous bound on any wait for the external process

MOTET_TOML = """\
backend = "sqlite"
log_format = "json"

[queues."work.fail"]
max_retries = 0
"""

GATE = '''\
import os
from pathlib import Path

import trio

GATES = Path(os.environ["MOTET_TEST_GATES"])


async def started_then_wait(name: str, gate: str) -> None:
    """Mark `name` as started, then wait until the test opens `gate`."""
    (GATES / f"{name}.started").touch()
    while not (GATES / gate).exists():
        await trio.sleep(0.01)  # the app under test polls; the test itself never sleeps
'''

STEPS = {
    "steps/__init__.py": "",
    "steps/gate.py": GATE,
    "steps/orders_step.py": """\
import attrs

from motet import http


@attrs.frozen
class Order:
    id: str
    qty: int


config = {"name": "PlaceOrder", "triggers": [http("POST", "/orders", body=Order)],
          "enqueues": ["order.placed"], "flows": ["orders"]}


async def handler(request, ctx):
    await ctx.state.set("orders", request.body.id, {"qty": request.body.qty})
    await ctx.emit("order.placed", {"id": request.body.id, "qty": request.body.qty})
    return {"status": 201, "body": {"id": request.body.id}}
""",
    "steps/get_order_step.py": """\
from motet import http

config = {"name": "GetOrder", "triggers": [http("GET", "/orders/:id")], "flows": ["orders"]}


async def handler(request, ctx):
    order = await ctx.state.get("orders", request.path_params["id"])
    done = await ctx.state.get("done", request.path_params["id"])
    if order is None:
        return {"status": 404, "body": {"error": "no such order"}}
    return {"status": 200, "body": {**order, "done": done is not None}}
""",
    "steps/ship_step.py": """\
import attrs

from motet import queue

from steps.gate import started_then_wait


@attrs.frozen
class Placed:
    id: str
    qty: int


config = {"name": "Ship", "triggers": [queue("order.placed", input=Placed, concurrency=1)],
          "flows": ["orders"]}


async def handler(order, ctx):
    if order.id.startswith("slow"):
        await started_then_wait(f"ship-{order.id}", "ship.open")
    await ctx.state.set("done", order.id, {"shipped": True})
""",
    "steps/slow_step.py": """\
from motet import http

from steps.gate import started_then_wait

config = {"name": "SlowRequest", "triggers": [http("POST", "/slow/:id")],
          "enqueues": ["order.placed"], "flows": ["orders"]}


async def handler(request, ctx):
    order_id = request.path_params["id"]
    await started_then_wait(f"request-{order_id}", "requests.open")
    await ctx.state.set("orders", order_id, {"qty": 1})
    await ctx.emit("order.placed", {"id": order_id, "qty": 1})
    return {"status": 200, "body": {"id": order_id}}
""",
    "steps/fail_step.py": """\
from motet import queue

config = {"name": "AlwaysFails",
          "triggers": [queue("work.fail", max_retries=1, retry_delay=10)]}


async def handler(data, ctx):
    raise RuntimeError(f"cannot do {data!r}")
""",
}


# Steps that import no helper module of the project, for tests that load steps in the test
# process itself (every project's helpers would be the one cached `steps` package there).
BASIC_STEPS = {
    k: v
    for k, v in STEPS.items()
    if k not in ("steps/gate.py", "steps/ship_step.py", "steps/slow_step.py")
}
BASIC_STEPS["steps/ship_step.py"] = """\
from motet import queue

config = {"name": "Ship", "triggers": [queue("order.placed")], "flows": ["orders"]}


async def handler(order, ctx):
    await ctx.state.set("done", order["id"], {"shipped": True})
"""


def write_project(
    root: Path, *, toml: str | None = MOTET_TOML, files: dict[str, str] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gates").mkdir(exist_ok=True)
    if toml is not None:
        (root / "motet.toml").write_text(toml, encoding="utf-8")
    for relative, text in (files if files is not None else STEPS).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def wait_until(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll `condition` (something an external process does) until truthy or the deadline."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.02)


class Motet:
    """`python -m motet.cli ARGS` (or `command ARGS`) in `root`, its output collected line by
    line."""

    def __init__(
        self,
        root: Path,
        *args: str,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = (sys.executable, "-m", "motet.cli"),
    ) -> None:
        self.root = root
        environment = {
            **os.environ,
            "MOTET_TEST_GATES": str(root / "gates"),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [*command, *args],
            cwd=root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(
                target=self._read, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        """stdout's JSON log records (log_format = "json")."""
        out = []
        for line in list(self.stdout):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def started(self, count: int = 1) -> str:
        """The URL of the `count`-th runtime start logged (a restart logs another)."""

        def urls() -> list[str]:
            return [
                r["urls"][0]
                for r in self.records()
                if r.get("msg") == "motet runtime started" and r.get("urls")
            ]

        def ready() -> list[str]:
            found = urls()
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                raise AssertionError(
                    f"motet exited with {self.process.returncode} before "
                    f"start #{count}; stderr: {self.stderr}"
                )
            return []

        return str(wait_until(ready, f"start #{count}; stderr: {self.stderr}")[count - 1])

    def wait_stderr(self, text: str) -> None:
        wait_until(
            lambda: any(text in line for line in self.stderr),
            f"{text!r} on stderr; stderr so far: {self.stderr}",
        )

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, deadline: float = DEADLINE) -> int:
        try:
            code = self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"motet did not exit within {deadline:g} s; stderr: {self.stderr}"
            ) from None
        for reader in self._readers:
            reader.join(DEADLINE)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


def run_motet(
    root: Path, *args: str, deadline: float = DEADLINE
) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "motet.cli", *args],
        cwd=root,
        text=True,
        capture_output=True,
        timeout=deadline,
        env={**os.environ, "MOTET_TEST_GATES": str(root / "gates")},
    )


def get_json(url: str) -> tuple[int, Any]:
    response = httpx.get(url, timeout=DEADLINE)
    return response.status_code, response.json()


def open_gate(root: Path, name: str) -> None:
    (root / "gates" / name).touch()


def has_started(root: Path, name: str) -> bool:
    return (root / "gates" / f"{name}.started").exists()
