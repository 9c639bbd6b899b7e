"""The SQLite backend's tuning, as one record (see `SqliteBackend` for what each means)."""

from __future__ import annotations

from typing import Any

import attrs

from .._validators import Check, count, seconds
from ._sqlite_schema import SYNCHRONOUS_LEVELS, Synchronous

_SYNCHRONOUS = Check(
    f"one of {list(SYNCHRONOUS_LEVELS)} (OFF is refused: it gives up durability)",
    lambda value: isinstance(value, str) and value.upper() in SYNCHRONOUS_LEVELS,
)

# Typed loosely: attrs' stubs infer the field's type from its float default, not None.
_POLL_INTERVAL: Any = attrs.validators.optional(seconds(allow_inf=True))


@attrs.frozen
class SqliteOptions:
    """How the SQLite backend commits, waits and grows.

    `synchronous` is SQLite's PRAGMA in WAL mode (any case): FULL (default) survives a power
    cut, NORMAL a process crash, EXTRA also fsyncs the folder. `busy_timeout` (s) is how long
    a write waits for another process's write lock before failing with `BackendUnavailable`.
    `poll_interval` (s) is how often a waiting `receive` looks for other processes' commits
    (None: never, for a file no other process uses). `doorbell_poll` (s) replaces it while
    the doorbell works (other processes' commits then announce themselves over a unix
    datagram socket and the poll is only the fallback); None turns the doorbell off.
    `max_batch` caps the calls per
    transaction. `max_bytes` caps the file's size (None: no cap); writes beyond it fail like
    a full disk.
    """

    synchronous: Synchronous | str = attrs.field(default="FULL", validator=_SYNCHRONOUS)
    busy_timeout: float = attrs.field(
        default=5.0, validator=seconds(allow_zero=True, allow_inf=True)
    )
    poll_interval: float | None = attrs.field(default=0.05, validator=_POLL_INTERVAL)
    doorbell_poll: float | None = attrs.field(default=1.0, validator=_POLL_INTERVAL)
    max_batch: int = attrs.field(default=512, validator=count())
    max_bytes: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(count(64 * 1024))
    )

    @property
    def level(self) -> Synchronous:
        """`synchronous` as SQLite spells it."""
        return self.synchronous.upper()  # type: ignore[return-value]
