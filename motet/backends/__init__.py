"""Storage backends: the Protocols (and the records they take), the in-memory reference
backend and backend selection.

`MemoryBackend`, `SqliteBackend`, `RedisBackend` and `RedisOptions` are exported lazily: their
modules load on first use, so `import motet.backends` costs none of the backends' code, and a
process serving one backend holds only that one's (coredis itself is imported only when a
Redis backend runs)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._envelope import Delivery as Delivery
from .._envelope import QueueDepth as QueueDepth
from .._envelope import RateLimit as RateLimit
from .._envelope import Subscription as Subscription
from .._public import publish as _publish
from .._public import publish_one as _publish_one
from ._protocol import Backend as Backend
from ._protocol import Leased as Leased
from ._protocol import QueueBackend as QueueBackend
from ._protocol import ScheduleBackend as ScheduleBackend
from ._protocol import StateBackend as StateBackend
from ._protocol import StateChange as StateChange
from ._select import backend_from_url as backend_from_url
from ._sqlite_options import SqliteOptions as SqliteOptions

if TYPE_CHECKING:
    from ._memory import MemoryBackend as MemoryBackend
    from ._redis import RedisBackend as RedisBackend
    from ._redis_link import RedisOptions as RedisOptions
    from ._sqlite import SqliteBackend as SqliteBackend

__all__ = [
    "Backend",
    "Delivery",
    "Leased",
    "MemoryBackend",
    "QueueBackend",
    "QueueDepth",
    "RateLimit",
    "RedisBackend",
    "RedisOptions",
    "ScheduleBackend",
    "SqliteBackend",
    "SqliteOptions",
    "StateBackend",
    "StateChange",
    "Subscription",
    "backend_from_url",
]

_LAZY = {
    "MemoryBackend": "._memory",
    "RedisBackend": "._redis",
    "RedisOptions": "._redis_link",
    "SqliteBackend": "._sqlite",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    _publish_one(__name__, value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


_publish(__name__, globals())
