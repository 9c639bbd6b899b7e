"""State: namespaced JSON documents, writes as data (`StateWrite`), and `ctx.state`."""

from ._ops import StateWrite as StateWrite
from ._ops import UpdateOp as UpdateOp
from ._store import StateStore as StateStore

__all__ = ["StateStore", "StateWrite", "UpdateOp"]
