"""Three real `motet start` processes of one project over one private redis-server.

The processes are `tests/crash/_motet.Motet`s (output collected, SIGKILL of the whole
process group on close), started with `--backend <the server's URL> --port 0`, so each
serves its own port and all of them share the queues, leases, dead letters and cron marks
in Redis. Messages are published over HTTP (a `Publish` step: 202 once the message is
durable) spread over the instances, or with `motet emit --backend`.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .._redis_server import RedisServer
from ..crash._motet import DEADLINE, Motet, records, wait_until, write_project

TOML = 'log_format = "json"\n'


class Cluster:
    """`size` instances of the project at `root`, all pointed at `server`."""

    def __init__(self, root: Path, server: RedisServer, size: int = 3) -> None:
        self.root = root
        self.server = server
        self.instances: list[Motet] = []
        try:
            # Started together, then waited for: start-up (imports) overlaps.
            for _ in range(size):
                self.instances.append(Motet(root, "start", "--port", "0", "--backend", server.url))
            self.urls = [instance.started() for instance in self.instances]
        except BaseException:
            self.close()
            raise
        self.client = httpx.Client(timeout=DEADLINE)

    @property
    def pids(self) -> list[int]:
        return [instance.pid for instance in self.instances]

    def alive(self) -> list[bool]:
        return [instance.process.poll() is None for instance in self.instances]

    # -- publishing ------------------------------------------------------------------------

    def post(self, topic: str, body: dict[str, Any], *, instance: int) -> bool:
        """POST to one instance; True on a 2xx (the message is then durable)."""
        try:
            response = self.client.post(f"{self.urls[instance]}/publish/{topic}", json=body)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300

    def post_all(
        self, topic: str, bodies: Sequence[dict[str, Any]], *, workers: int = 12
    ) -> list[str]:
        """POST every body, concurrently, round-robin over the instances; the ids of those
        answered 2xx."""

        def one(index: int) -> bool:
            return self.post(topic, bodies[index], instance=index % len(self.urls))

        with ThreadPoolExecutor(workers) as pool:
            accepted = list(pool.map(one, range(len(bodies))))
        return [body["id"] for body, ok in zip(bodies, accepted, strict=True) if ok]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`motet ARGS --backend <redis>` in the project, as an operator would run it."""
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "motet.cli",
                "--project",
                str(self.root),
                *args,
                "--backend",
                self.server.url,
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            cwd=self.root,
        )

    def emit(self, topic: str, data: dict[str, Any]) -> None:
        done = self.cli("emit", topic, json.dumps(data))
        assert done.returncode == 0, f"motet emit failed:\n{done.stderr}"

    def dead_letters(self) -> list[dict[str, Any]]:
        done = self.cli("dlq", "list", "--json")
        assert done.returncode == 0, f"motet dlq list failed:\n{done.stderr}"
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    # -- what the handlers recorded --------------------------------------------------------

    def handled(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in records(self.root) if r.get("kind") == kind]

    def wait_handled(
        self,
        kind: str,
        ids: Iterable[str],
        *,
        key: str = "id",
        step: str | None = None,
        deadline: float = DEADLINE,
    ) -> None:
        """Wait until every id was handled as `kind` (by `step` alone, when given: a topic
        with two subscribers is not done when the faster one is)."""
        wanted = set(ids)

        def seen() -> set[str]:
            return {r[key] for r in self.handled(kind) if step is None or r["step"] == step}

        try:
            wait_until(lambda: wanted <= seen(), f"{len(wanted)} {kind!r} handlings", deadline)
        except AssertionError:
            missing = wanted - seen()
            raise AssertionError(
                f"{len(missing)} of {len(wanted)} never handled as {kind!r}"
                f"{f' by {step}' if step else ''} "
                f"(e.g. {sorted(missing)[:10]}); instances alive: "
                f"{self.alive()}\n{self.output()}"
            ) from None

    def output(self) -> str:
        return "\n".join(
            f"--- instance {i} (pid {m.pid}):\n{m.output(15)}" for i, m in enumerate(self.instances)
        )

    # -- stopping --------------------------------------------------------------------------

    def stop(self) -> list[int]:
        """SIGTERM every live instance (graceful: handlers in flight finish); exit codes."""
        live = [m for m in self.instances if m.process.poll() is None]
        for instance in live:
            instance.process.terminate()
        return [instance.wait() for instance in live]

    def close(self) -> None:
        """Leave nothing running (SIGKILL what is left)."""
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        for instance in self.instances:
            instance.close()


class Publishing:
    """`threads` threads POSTing fresh ids (`<prefix><n>`) on `topic`, round-robin over the
    instances, each waiting for its answer before the next, until `stop()`; at most `rate`
    posts per second in all (a steady flow, not a flood that starves the instances' CPU).

    `accepted` (answered 2xx, in the order the answers came) and `refused` (an error or no
    answer) are shared lists; read them under `lock` while the threads run.
    """

    def __init__(
        self, cluster: Cluster, topic: str, prefix: str, *, threads: int = 4, rate: float = 100.0
    ) -> None:
        self.cluster = cluster
        self.interval = threads / rate  # s between two posts of one thread
        self.topic = topic
        self.prefix = prefix
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self._numbers = itertools.count()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(threads)]

    def _post(self) -> None:
        due = time.monotonic()
        # wait() returns True once stop() is called; else it paces this thread.
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            due = max(due, time.monotonic() - self.interval) + self.interval
            with self.lock:
                n = next(self._numbers)
            message_id = f"{self.prefix}{n}"
            ok = self.cluster.post(
                self.topic, {"id": message_id}, instance=n % len(self.cluster.urls)
            )
            with self.lock:
                (self.accepted if ok else self.refused).append(message_id)

    def snapshot(self) -> list[str]:
        """The ids accepted so far."""
        with self.lock:
            return list(self.accepted)

    def __enter__(self) -> Publishing:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop posting and wait for the answers of the requests in flight."""
        self._stopping.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(DEADLINE + 5)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# The `cluster` fixture: `cluster(steps, toml="")` starts the test's cluster.
StartCluster = Callable[..., "Cluster"]


def start_cluster(
    root: Path, server: RedisServer, steps: dict[str, str], *, toml: str = ""
) -> Cluster:
    write_project(root, TOML + toml, steps)
    return Cluster(root, server)


def spread(handlings: Iterable[dict[str, Any]]) -> Counter[int]:
    """Handlings per process id."""
    return Counter(r["pid"] for r in handlings)
