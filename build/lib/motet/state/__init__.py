"""State: namespaced JSON documents, writes as data (`StateWrite`), and `ctx.state`."""

from .._public import publish as _publish
from .._state_writes import StateWrite as StateWrite
from .._state_writes import UpdateOp as UpdateOp
from ._store import StateStore as StateStore

__all__ = ["StateStore", "StateWrite", "UpdateOp"]

_publish(__name__, globals())
