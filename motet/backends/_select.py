"""Choosing a backend from its `--backend` / `backend =` spelling.

Each backend is imported only when chosen, so `import motet` never pays for (or requires)
SQLite tuning or the optional Redis client, and a durable backend's process does not hold
the memory backend's code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .._errors import BackendUnavailable
from .._redact import redact
from ._protocol import Backend

DEFAULT_SQLITE_PATH = Path(".motet") / "motet.db"

ACCEPTED_FORMS = (
    "'memory'",
    "'sqlite' (the project's .motet/motet.db)",
    "'sqlite:///absolute/path.db'",
    "'sqlite:relative/path.db' (relative to the project folder)",
    "'redis://host:port/db'",
    "'rediss://host:port/db' (TLS)",
    "'unix:///path/to/redis.sock'",
)


def backend_from_url(spec: str, *, root: Path) -> Backend:
    """The backend named by `spec`; relative SQLite paths are resolved against `root`."""
    text = spec.strip()
    if text == "memory":
        from ._memory import MemoryBackend

        return MemoryBackend()
    if text == "sqlite" or text.startswith("sqlite:"):
        return _sqlite(_sqlite_path(text, spec, root))
    if text.startswith(("redis://", "rediss://", "unix://")):
        return _redis(text)
    raise BackendUnavailable(
        f"unknown backend {redact(spec)!r}: expected one of " + ", ".join(ACCEPTED_FORMS)
    )


def _sqlite_path(text: str, spec: str, root: Path) -> Path:
    if text == "sqlite":
        return root / DEFAULT_SQLITE_PATH
    if text.startswith("sqlite:///"):
        path = Path("/" + text.removeprefix("sqlite:///").lstrip("/"))
    elif text.startswith("sqlite://"):
        raise BackendUnavailable(
            f"backend {spec!r}: a SQLite URL takes no host; write 'sqlite:///absolute/path.db' "
            "or 'sqlite:relative/path.db'"
        )
    else:
        path = Path(text.removeprefix("sqlite:")).expanduser()
    if not path.name or text.endswith("/"):  # Path() drops a trailing slash: a folder
        raise BackendUnavailable(
            f"backend {spec!r} names no database file; expected e.g. 'sqlite:data/motet.db'"
        )
    return path if path.is_absolute() else root / path


def _sqlite(path: Path) -> Backend:
    from ._sqlite import SqliteBackend

    return SqliteBackend(path)


def _redis(url: str) -> Backend:
    missing = [name for name in ("coredis", "hiredis") if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendUnavailable(
            f"backend {redact(url)!r} needs the Redis client packages coredis and hiredis, and "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; "
            "install them with: pip install 'motet[redis]'"
        )
    from ._redis import RedisBackend

    try:
        return RedisBackend(url)
    except ValueError as exc:  # a malformed URL: the user's mistake, said in one line
        raise BackendUnavailable(str(exc)) from exc
