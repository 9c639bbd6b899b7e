"""Fixtures: a private redis-server per test and a starter of 3-instance clusters on it.

Each test gets its own server (AOF, `appendfsync always`), so a test that kills Redis or an
instance leaves nothing behind for the next one. Teardown SIGKILLs whatever is still
running: every instance process (and its process group) and the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .._redis_server import RedisServer, redis_server
from ._cluster import Cluster, StartCluster, start_cluster


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path, redis: RedisServer) -> Iterator[StartCluster]:
    """`cluster(steps, toml="")`: 3 `motet start` processes of a project in tmp_path."""
    started: list[Cluster] = []

    def start(steps: dict[str, str], *, toml: str = "") -> Cluster:
        assert not started, "one cluster per test"
        started.append(start_cluster(tmp_path / "app", redis, steps, toml=toml))
        return started[0]

    try:
        yield start
    finally:
        for each in started:
            each.close()
