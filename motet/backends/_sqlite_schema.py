"""Opening motet's SQLite file: pragmas, schema, version check, and errors a user can act on.

Every SQLite failure that reaches a caller goes through `unavailable()`, which turns the
SQLite error code into a `BackendUnavailable` naming the file and what to do about it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal

from .._errors import BackendUnavailable

Synchronous = Literal["NORMAL", "FULL", "EXTRA"]
SYNCHRONOUS_LEVELS: tuple[Synchronous, ...] = ("NORMAL", "FULL", "EXTRA")

# Bump when the tables change, and add the step from the previous version to _MIGRATIONS;
# a file with a newer version is refused (never guessed at).
SCHEMA_VERSION = 6

# Each connection's page cache (SQLite's default is 2,000 KiB). The writer's filled to the
# default under steady traffic and stayed resident; at 1,024 KiB a served example app holds
# about 0.9 MiB less after 40k requests, and bench_sqlite's CPU per run (user and system, a
# 20k-message backlog) is unchanged. At 512 KiB or less, pages the lease queries need are read
# back from the OS often enough to show in system time (+13% at 512, +27% at 256).
CACHE_KIB = 1024

# v5: rate limits. One token bucket per rate-limited subscription (`tokens` may dip a hair
# below 0; `stamp` is the epoch seconds of its last refill).
_RATE_BUCKETS = """
CREATE TABLE IF NOT EXISTS rate_buckets (
    subscription TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL
) WITHOUT ROWID
"""

_SCHEMA = """
CREATE TABLE motet_schema (version INTEGER NOT NULL);

CREATE TABLE subscriptions (
    key TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    step TEXT NOT NULL,
    strategy TEXT NOT NULL,
    options TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX subscriptions_by_topic ON subscriptions (topic);

-- One row per (message, subscription). `seq` is publish order and never reused
-- (AUTOINCREMENT), so (seq, attempt) identifies one lease: the receipt.
-- state: ready    waiting to be leased
--        held     fifo only: an earlier message of its group is still pending
--        leased   handed out until `due` (the lease end)
--        delayed  waiting for its retry at `due`
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    grp TEXT,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready', 'held', 'leased', 'delayed')),
    attempt INTEGER NOT NULL,
    due REAL NOT NULL,
    error TEXT,
    redriven INTEGER NOT NULL DEFAULT 0,
    started REAL,  -- when its latest lease began (v4)
    traceback TEXT  -- of its last failure, with `error` (v4)
);
CREATE INDEX messages_ready ON messages (subscription, priority DESC, seq)
    WHERE state = 'ready';
CREATE INDEX messages_timed ON messages (subscription, due)
    WHERE state IN ('leased', 'delayed');
CREATE INDEX messages_group ON messages (subscription, grp, seq)
    WHERE grp IS NOT NULL;

CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subscription TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    failed_at REAL NOT NULL,
    traceback TEXT
);
CREATE INDEX dead_letters_by_subscription ON dead_letters (subscription, seq);

-- Delayed emits (one row per message, not per subscription) until `due`, when they are
-- filed in the queues of their topic's subscriptions; idempotency keys until `until`.
CREATE TABLE scheduled (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    id TEXT NOT NULL,
    envelope TEXT NOT NULL,
    due REAL NOT NULL
);
CREATE INDEX scheduled_by_topic ON scheduled (topic, due);

CREATE TABLE idempotency_keys (
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (topic, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_until ON idempotency_keys (until);

-- v4: what settling a delivery keeps (done / cancelled, the handler's result) until
-- `keep_until`; the live states are read from `messages` and `dead_letters`.
CREATE TABLE settled (
    id TEXT NOT NULL,
    subscription TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    enqueued REAL,
    started REAL,
    finished REAL NOT NULL,
    keep_until REAL NOT NULL,
    result TEXT,
    note TEXT,
    error TEXT,
    PRIMARY KEY (id, subscription)
) WITHOUT ROWID;
CREATE INDEX settled_by_expiry ON settled (keep_until);

CREATE TABLE state (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;

CREATE TABLE cron_marks (
    step TEXT NOT NULL,
    scheduled REAL NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (step, scheduled)
) WITHOUT ROWID;
"""
_SCHEMA += _RATE_BUCKETS + ";\n"

# version -> the statements that bring a file at that version to the next one. Each runs
# in the opening transaction with the version bump, so an upgrade is all or nothing.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE dead_letters ADD COLUMN traceback TEXT",),  # the last attempt's
    # delayed emits, idempotency keys, and re-driven copies (which never expire)
    2: (
        "ALTER TABLE messages ADD COLUMN redriven INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE IF NOT EXISTS scheduled (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, "
        "id TEXT NOT NULL, envelope TEXT NOT NULL, due REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS scheduled_by_topic ON scheduled (topic, due)",
        "CREATE TABLE IF NOT EXISTS idempotency_keys (topic TEXT NOT NULL, key TEXT NOT NULL, "
        "id TEXT NOT NULL, until REAL NOT NULL, PRIMARY KEY (topic, key)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS idempotency_keys_by_until ON idempotency_keys (until)",
    ),
    3: (  # v4: message status and cancellation
        "ALTER TABLE messages ADD COLUMN started REAL",
        "ALTER TABLE messages ADD COLUMN traceback TEXT",
        "CREATE TABLE IF NOT EXISTS settled (id TEXT NOT NULL, subscription TEXT NOT NULL, "
        "state TEXT NOT NULL, attempts INTEGER NOT NULL, enqueued REAL, started REAL, "
        "finished REAL NOT NULL, keep_until REAL NOT NULL, result TEXT, note TEXT, error TEXT, "
        "PRIMARY KEY (id, subscription)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS settled_by_expiry ON settled (keep_until)",
    ),
    4: (_RATE_BUCKETS,),
}

# -- schema version 6: streams (live records clients follow; see `_sqlite_streams`) ------
# The stream tables; `IF NOT EXISTS`, so the upgrade step is safe to apply on its own.
STREAM_TABLES: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS stream_groups (
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (stream, grp)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stream_items (
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (stream, grp, id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS stream_log (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        id TEXT,
        data TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS stream_log_by_group ON stream_log (stream, grp, seq)",
)

_SCHEMA += "".join(f"\n{statement};\n" for statement in STREAM_TABLES)
_MIGRATIONS[5] = STREAM_TABLES

_ADVICE = {
    "SQLITE_BUSY": "another process holds a write lock on it for longer than the busy timeout; "
    "stop the other program (or a motet of an incompatible version) using this file, "
    "or raise busy_timeout",
    "SQLITE_LOCKED": "it is locked by another connection; stop the other program using it",
    "SQLITE_FULL": "the disk (or the configured size limit) is full; free space and retry "
    "(nothing of the failed write was stored)",
    "SQLITE_NOTADB": "it is not a SQLite database; point motet at another path or move the "
    "file away",
    "SQLITE_CORRUPT": "the file is corrupt; restore it from a backup or move it away to "
    "start empty",
    "SQLITE_READONLY": "it is read-only; make the file and its folder writable by this user",
    "SQLITE_CANTOPEN": "it cannot be opened; check that the folder exists and is writable "
    "and that the path is not a directory",
    "SQLITE_PERM": "permission denied; make the file and its folder writable by this user",
    "SQLITE_IOERR": "the disk reported an I/O error; check the disk and free space",
    "SQLITE_AUTH": "access was denied",
}


def unavailable(error: sqlite3.Error, path: Path, doing: str) -> BackendUnavailable:
    """The `BackendUnavailable` for a SQLite failure while `doing` something with `path`."""
    name = getattr(error, "sqlite_errorname", "") or ""
    advice = next(
        (text for code, text in _ADVICE.items() if name == code or name.startswith(code + "_")),
        "check the file, its folder and the disk",
    )
    return BackendUnavailable(
        f"sqlite backend: cannot {doing} {path}: {error} ({name or 'no error code'}); {advice}",
        cause=error,
    )


def connect(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit BEGIN/COMMIT), with a page
    cache of `CACHE_KIB`."""
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,  # used from trio's worker threads, one call at a time
        )
    except sqlite3.Error as error:
        raise unavailable(error, path, "open") from error
    try:
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    except sqlite3.Error as error:
        conn.close()
        raise unavailable(error, path, "open") from error
    return conn


def prepare_folder(path: Path) -> None:
    """Create the database's folder, or say why it cannot be created."""
    folder = path.parent
    if folder.is_dir():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackendUnavailable(
            f"sqlite backend: cannot create the folder {folder} for the database {path}: "
            f"{error.strerror or error}; choose a database path in a writable folder",
            cause=error,
        ) from error


def open_writer(
    path: Path, *, synchronous: Synchronous, busy_timeout: float, max_bytes: int | None
) -> sqlite3.Connection:
    """Open (creating if needed) the file, switch it to WAL and make sure the schema is ours."""
    prepare_folder(path)
    if path.is_dir():
        raise BackendUnavailable(
            f"sqlite backend: {path} is a directory, expected a database file; "
            "point motet at a file path"
        )
    conn = connect(path, busy_timeout=busy_timeout)
    try:
        _configure(conn, synchronous=synchronous, busy_timeout=busy_timeout)
        if max_bytes is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page_size)}")
        _ensure_schema(conn, path)
    except sqlite3.Error as error:
        conn.close()
        raise unavailable(error, path, "open") from error
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    conn = connect(path, busy_timeout=busy_timeout)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        conn.close()
        raise unavailable(error, path, "open") from error
    return conn


def switch_to_wal(conn: sqlite3.Connection, *, busy_timeout: float) -> str:
    """`PRAGMA journal_mode = WAL`, waiting out other connections switching the same new
    file at the same moment (instances started together on a fresh project); returns the
    journal mode the file is in. The switch needs the file to itself, and when two
    connections each hold the read lock and both want it, SQLite answers one of them
    SQLITE_BUSY at once, without its busy handler (waiting could never end): that one tries
    again here, until `busy_timeout` seconds have passed. A blocking wait, as the busy
    handler's own is: this runs while a connection is being opened, before any work."""
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def _configure(conn: sqlite3.Connection, *, synchronous: Synchronous, busy_timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    mode = switch_to_wal(conn, busy_timeout=busy_timeout)
    if str(mode).lower() != "wal":
        raise BackendUnavailable(
            f"sqlite backend: could not switch the database to WAL mode (got {mode!r}); "
            "motet needs a file on a local filesystem that supports WAL"
        )
    # synchronous is per connection; only the writer's setting matters for durability.
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # After a burst, checkpoints truncate the WAL back to this size instead of keeping it.
    conn.execute("PRAGMA journal_size_limit = 67108864")
    conn.execute("PRAGMA foreign_keys = OFF")


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            for statement in _statements(_SCHEMA):
                conn.execute(statement)
            conn.execute("INSERT INTO motet_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif "motet_schema" not in tables:
            raise BackendUnavailable(
                f"sqlite backend: {path} is a SQLite database that motet did not create "
                f"(tables: {', '.join(sorted(tables))}); point motet at another path"
            )
        else:
            row = conn.execute("SELECT max(version) FROM motet_schema").fetchone()
            version = row[0] if row else None
            if not isinstance(version, int):
                raise BackendUnavailable(
                    f"sqlite backend: {path} has no schema version; it is damaged, restore it "
                    "from a backup or move it away"
                )
            if version > SCHEMA_VERSION:
                raise BackendUnavailable(
                    f"sqlite backend: {path} was written by a newer motet (schema version "
                    f"{version}, this motet understands up to {SCHEMA_VERSION}); upgrade motet "
                    "or point it at another file"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[step]:
                    if not _column_exists(conn, statement):
                        conn.execute(statement)
            # A real (one-page) write even when nothing migrated: a file SQLite could only
            # open read-only is refused now, with advice, instead of at the first publish.
            conn.execute("UPDATE motet_schema SET version = ?", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _column_exists(conn: sqlite3.Connection, statement: str) -> bool:
    """Whether `statement` is an `ALTER TABLE t ADD COLUMN c ...` whose column is there
    already (SQLite has no ADD COLUMN IF NOT EXISTS), so each step is safe to apply on its
    own, also to a file a later step's schema created."""
    words = statement.split()
    if len(words) < 6 or [w.upper() for w in words[:2] + words[3:5]] != [
        "ALTER",
        "TABLE",
        "ADD",
        "COLUMN",
    ]:
        return False
    table, column = words[2], words[5]
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def _statements(script: str) -> list[str]:
    """Split the schema script into statements (executescript would commit implicitly)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
