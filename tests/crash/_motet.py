"""Real `motet` processes on a project in a temporary folder, for crash and instance tests.

Handlers record every handling as one JSON line appended to `records.jsonl` in the project
(one `os.write` on an O_APPEND file: whole lines, in order, from any number of processes),
so what happened survives the kill -9 of the process that did it. Tests poll conditions of
the external processes under a real-time deadline; they never sleep to wait for work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

DEADLINE = 60.0  # s: generous bound on any wait for an external process

RECORD = '''\
import json
import os
from pathlib import Path

RECORDS = Path(__file__).resolve().parent.parent / "records.jsonl"


def record(**fields):
    """Append one handling to records.jsonl; the line is on disk before the handler goes on."""
    line = json.dumps({"pid": os.getpid(), **fields}) + "\\n"
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
'''


def write_project(root: Path, toml: str, steps: dict[str, str]) -> Path:
    """A project folder: motet.toml, steps/ (with the `record` helper) and nothing else."""
    (root / "steps").mkdir(parents=True, exist_ok=True)
    (root / "motet.toml").write_text(toml, encoding="utf-8")
    (root / "steps" / "__init__.py").write_text("", encoding="utf-8")
    (root / "steps" / "record.py").write_text(RECORD, encoding="utf-8")
    for name, text in steps.items():
        (root / "steps" / name).write_text(text, encoding="utf-8")
    return root


def records(root: Path) -> list[dict[str, Any]]:
    """Every handling recorded so far (a line cut short by a kill is not counted)."""
    path = root / "records.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def query(root: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of the project's SQLite file, read the way a restarted process would see them."""
    conn = sqlite3.connect(root / ".motet" / "motet.db", timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_until(
    condition: Callable[[], Any], what: str, deadline: float = DEADLINE, interval: float = 0.02
) -> Any:
    """Poll `condition` until truthy or the deadline; returns its value."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(interval)


def eventually(condition: Callable[[], Any], deadline: float) -> bool:
    """Whether `condition` became truthy within `deadline` s (polled)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


class Motet:
    """`python -m motet.cli --project ROOT ARGS`, its output collected line by line."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for inherited in ("MOTET_INSTANCE", "MOTET_TOKEN"):  # as if run from a clean shell
            env.pop(inherited, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "motet.cli", "--project", str(root), *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.stdout):
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def started_urls(self) -> list[str]:
        """The URLs of every "motet runtime started" line so far."""
        return [
            r["urls"][0]
            for r in self.log_records()
            if r.get("msg") == "motet runtime started" and r.get("urls")
        ]

    def started(self, deadline: float = DEADLINE) -> str:
        """Wait for the runtime to serve; its URL."""

        def ready() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"motet exited with {self.process.returncode} before serving:\n{self.output()}"
                )
            urls = self.started_urls()
            return urls[0] if urls else None

        return str(wait_until(ready, "motet to start serving", deadline))

    def wait_stderr(self, text: str, deadline: float = DEADLINE) -> str:
        return str(
            wait_until(
                lambda: next((x for x in list(self.stderr) if text in x), None),
                f"{text!r} on stderr",
                deadline,
            )
        )

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill9(self) -> None:
        """SIGKILL, and wait until the process is gone (its files are then as it left them)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(DEADLINE)

    def wait(self, deadline: float = DEADLINE) -> int:
        try:
            return self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"motet did not exit within {deadline:g} s:\n{self.output()}"
            ) from None

    def output(self, last: int = 40) -> str:
        return "\n".join([*self.stderr[-last:], *self.stdout[-last:]])

    def close(self) -> None:
        """Leave nothing running: SIGKILL the process group if still alive."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(DEADLINE)
        for reader in self._readers:
            reader.join(5.0)  # children of the process may still hold the pipes
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
