"""A private `redis-server` for tests: a free port on 127.0.0.1, a temp dir, AOF on.

    with redis_server() as server:          # skips the test when redis-server is missing
        backend = RedisBackend(server.url)
        ...
        server.kill()                         # SIGKILL: a crash, not a clean shutdown
        server.start()                        # same port, same dir: the AOF is replayed

The server runs with `appendonly yes` and `appendfsync always`, the persistence setting
the Redis backend assumes: a write Redis acknowledged is on disk before the reply, so a
killed server loses nothing the backend reported as done. `start`/`stop`/`kill` block the
calling thread (only while the process starts or exits); from trio, call them through
`trio.to_thread.run_sync`. Readiness is read from the server's own log line, not polled.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REDIS_SERVER_ENV = "MOTET_REDIS_SERVER"  # path of the binary, when not on PATH
REQUIRE_ENV = "MOTET_REQUIRE_REDIS"  # "1" (CI): a missing binary fails instead of skipping
_READY = b"Ready to accept connections"
_START_TIMEOUT = 10.0  # s of real time; a server that never says ready is a failure


def redis_server_binary() -> str | None:
    """The redis-server executable to use, or None when this machine has none."""
    configured = os.environ.get(REDIS_SERVER_ENV)
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def require_redis_server() -> str:
    """The binary, or skip the calling test with the reason and the fix (fail under CI)."""
    binary = redis_server_binary()
    if binary is None:
        reason = (
            "redis-server is not installed (needed for the Redis backend tests): "
            f"`apt-get install redis-server`, or set {REDIS_SERVER_ENV} to its path"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires these tests to run")
        pytest.skip(reason)
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a fixed port and data dir; restartable in place."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        port: int | None = None,
        appendfsync: str = "always",
        extra: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.extra = tuple(extra)  # more redis-server arguments (--requirepass, --unixsocket)
        self.appendfsync = appendfsync
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: list[bytes] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart after stop/kill) and return once it accepts connections."""
        if self.running:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
            "--loglevel", "notice",
            *self.extra,
        ]  # fmt: skip
        self._log = []
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.directory
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + _START_TIMEOUT
        buffer = b""
        while _READY not in buffer:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 65536) if readable else b""
            if not chunk:
                self._log.append(buffer)
                code = self.process.poll()
                self.stop()
                raise RuntimeError(
                    f"redis-server on port {self.port} did not become ready "
                    f"(exit code {code}); its log:\n" + buffer.decode(errors="replace")
                )
            buffer += chunk
        self._log.append(buffer)
        # Keep draining stdout in the background of the OS: redirect further output to the
        # pipe's end is not possible, so close our end; redis-server ignores SIGPIPE on logs.
        self.process.stdout.close()

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM) and wait for the exit."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Crash the server (SIGKILL): only what was fsynced to the AOF survives."""
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def redis_server(
    port: int | None = None, appendfsync: str = "always", extra: Sequence[str] = ()
) -> Iterator[RedisServer]:
    """A started private redis-server, stopped and its directory removed on exit.

    `appendfsync` other than "always" is for benchmarks that show what fsync costs."""
    binary = require_redis_server()
    with tempfile.TemporaryDirectory(prefix="motet-redis-") as directory:
        server = RedisServer(binary, Path(directory), port, appendfsync, extra)
        server.start()
        try:
            yield server
        finally:
            server.kill()
