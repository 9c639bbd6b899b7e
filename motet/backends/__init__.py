"""Storage backends: the Protocols, the in-memory reference backend and backend selection.

The SQLite and Redis backends are imported lazily by `backend_from_url`."""

from ._memory import MemoryBackend as MemoryBackend
from ._protocol import Backend as Backend
from ._protocol import QueueBackend as QueueBackend
from ._protocol import ScheduleBackend as ScheduleBackend
from ._protocol import StateBackend as StateBackend
from ._protocol import StateChange as StateChange
from ._select import backend_from_url as backend_from_url
from ._sqlite_options import SqliteOptions as SqliteOptions

__all__ = [
    "Backend",
    "MemoryBackend",
    "QueueBackend",
    "ScheduleBackend",
    "SqliteOptions",
    "StateBackend",
    "StateChange",
    "backend_from_url",
]
