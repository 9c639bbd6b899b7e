"""backend_from_url: every accepted spelling, and the errors for the others."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from motet._errors import BackendUnavailable
from motet.backends import MemoryBackend, backend_from_url
from motet.backends._redis import RedisBackend
from motet.backends._sqlite import SqliteBackend


def test_memory_gives_a_fresh_backend_each_time(tmp_path: Path) -> None:
    first = backend_from_url("memory", root=tmp_path)
    assert isinstance(first, MemoryBackend)
    assert backend_from_url(" memory ", root=tmp_path) is not first


def test_sqlite_defaults_to_the_project_database(tmp_path: Path) -> None:
    backend = backend_from_url("sqlite", root=tmp_path)
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / ".motet" / "motet.db"
    assert not (tmp_path / ".motet").exists()  # choosing opens nothing; `run` does


def test_sqlite_absolute_url(tmp_path: Path) -> None:
    backend = backend_from_url(f"sqlite:///{tmp_path}/data/jobs.db", root=Path("/elsewhere"))
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "data" / "jobs.db"


def test_sqlite_relative_path_is_under_the_root(tmp_path: Path) -> None:
    backend = backend_from_url("sqlite:data/jobs.db", root=tmp_path)
    assert isinstance(backend, SqliteBackend)
    assert backend.path == tmp_path / "data" / "jobs.db"


@pytest.mark.parametrize("spec", ["sqlite:", "sqlite:///", "sqlite:data/"])
def test_sqlite_without_a_file_name_is_refused(spec: str, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="names no database file"):
        backend_from_url(spec, root=tmp_path)


def test_sqlite_with_a_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="takes no host") as caught:
        backend_from_url("sqlite://server/jobs.db", root=tmp_path)
    assert "sqlite:///absolute/path.db" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6390/2", "rediss://cache.internal:6380/0", "unix:///run/redis.sock"]
)
def test_redis_urls(url: str, tmp_path: Path) -> None:
    backend = backend_from_url(url, root=tmp_path)
    assert isinstance(backend, RedisBackend)
    assert backend.url == url


@pytest.mark.parametrize("missing", ["coredis", "hiredis"])
def test_redis_without_its_client_packages_names_the_install_command(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == missing else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(BackendUnavailable) as caught:
        backend_from_url("redis://127.0.0.1:6379/0", root=tmp_path)
    assert "pip install 'motet[redis]'" in str(caught.value)
    assert f"{missing} is not installed" in str(caught.value)


@pytest.mark.parametrize(
    "spec", ["", "postgres://db/motet", "Memory", "mem", "redis:/host", "file:motet.db"]
)
def test_unknown_spec_names_the_accepted_forms(spec: str, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as caught:
        backend_from_url(spec, root=tmp_path)
    message = str(caught.value)
    assert repr(spec) in message
    for form in ("'memory'", "'sqlite'", "sqlite:///", "'redis://host:port/db'"):
        assert form in message


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis://127.0.0.1:6379/first", "the database must be a number, got 'first'"),
        ("redis://127.0.0.1:port/0", "port that is not a number"),
        ("unix://", "names no socket"),
    ],
)
def test_a_malformed_redis_url_says_what_is_wrong(url: str, complaint: str, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match=complaint):
        backend_from_url(url, root=tmp_path)
