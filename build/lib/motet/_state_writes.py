"""State writes and the changes they make, as data, so every backend applies and reports them
the same way (even inside a Lua-less transaction).

`StateWrite.apply(old) -> new` computes the new document (`None` means "deleted");
`state_change(namespace, key, old, new)` names what happened, and `change_event(change, ...)`
is the message a backend publishes for state triggers. The state API (`motet.state`) and the
backends (`motet.backends`) both build on this module, and neither on the other's internals.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from ._convert import unstructure
from ._envelope import JSON, Envelope, state_topic

OpName = Literal["set", "merge", "increment", "decrement", "remove"]
_OPS = ("set", "merge", "increment", "decrement", "remove")
_OP_KEYS = frozenset({"op", "type", "path", "field", "value", "by"})
_KINDS = ("set", "update", "delete")


@attrs.frozen
class UpdateOp:
    """One operation on a document. `path` is a dotted field path ("" = the document)."""

    op: OpName
    path: str = ""
    value: JSON = None

    def __attrs_post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"state update op must be one of {list(_OPS)}, got {self.op!r}")
        if not isinstance(self.path, str):
            raise ValueError(f"state update path must be a string, got {self.path!r}")
        if self.path and not all(self.path.split(".")):
            raise ValueError(
                f"state update path must be dotted field names like 'a.b', got {self.path!r}"
            )
        if self.op in ("increment", "decrement") and (
            isinstance(self.value, bool) or not isinstance(self.value, int | float)
        ):
            raise ValueError(f"{self.op} needs a number, got {self.value!r}")
        if self.op == "merge" and not isinstance(self.value, dict):
            raise ValueError(f"merge needs an object, got {self.value!r}")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> UpdateOp:
        """Accept `{"type"|"op": ..., "path": ..., "value"|"by": ...}` (Motia's shape)."""
        if not isinstance(raw, Mapping):
            raise ValueError(
                "state update op must be an object like {'op': 'set', 'path': 'a.b', 'value': 1}"
                f", got {type(raw).__name__} {raw!r}"
            )
        unknown = sorted(str(k) for k in raw if k not in _OP_KEYS)
        if unknown:  # a misspelt "value" would otherwise silently write None
            raise ValueError(
                f"state update op has unknown keys {unknown}; expected keys among "
                f"{sorted(_OP_KEYS)}"
            )
        op = raw.get("op", raw.get("type"))
        value = raw.get("value", raw.get("by"))
        if op in ("increment", "decrement") and value is None:
            value = 1
        return cls(op=op, path=raw.get("path", raw.get("field", "")), value=value)


def _kind(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in _KINDS:
        raise ValueError(f"state write kind must be one of {list(_KINDS)}, got {value!r}")


@attrs.frozen
class StateWrite:
    """set (replace), update (merge a dict or apply ops), or delete."""

    kind: Literal["set", "update", "delete"] = attrs.field(validator=_kind)
    value: JSON = None
    ops: tuple[UpdateOp, ...] = ()

    @classmethod
    def set(cls, value: JSON) -> StateWrite:
        return cls("set", value=value)

    @classmethod
    def delete(cls) -> StateWrite:
        return cls("delete")

    @classmethod
    def update(cls, change: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> StateWrite:
        """A dict merges into the document; a list is a sequence of ops applied in order."""
        if isinstance(change, Mapping):
            return cls("update", ops=(UpdateOp("merge", "", dict(change)),))
        if isinstance(change, str | bytes) or not isinstance(change, Sequence):
            raise ValueError(
                f"state update takes a dict to merge or a list of ops, got {type(change).__name__}"
            )
        return cls("update", ops=tuple(UpdateOp.parse(op) for op in change))

    def apply(self, old: JSON) -> JSON:
        if self.kind == "set":
            return copy.deepcopy(self.value)
        if self.kind == "delete":
            return None
        doc = copy.deepcopy(old) if old is not None else {}
        for op in self.ops:
            doc = _apply_op(doc, op)
        return doc


@attrs.frozen
class StateChange:
    """The outcome of one state write, also the payload of state-trigger events."""

    namespace: str
    key: str
    value: JSON  # None after a delete
    old_value: JSON  # None when created
    event: str  # "created" | "updated" | "deleted"; "" when nothing changed (delete of missing)


def state_change(
    namespace: str, key: str, old: JSON, new: JSON, *, changed: bool = True
) -> StateChange:
    """What a write from `old` to `new` did; `changed=False` (the backend found the stored
    JSON equal) reports no event."""
    if not changed:
        return StateChange(namespace, key, new, old, "")
    event = "deleted" if new is None else "created" if old is None else "updated"
    return StateChange(namespace, key, new, old, event)


def change_event(change: StateChange, trace_id: str, now: float) -> Envelope:
    """The message that tells the namespace's state triggers about `change`."""
    return Envelope(state_topic(change.namespace), unstructure(change), trace_id, created_at=now)


def _apply_op(doc: JSON, op: UpdateOp) -> JSON:
    if not op.path:
        return _apply_at(doc, op)
    if not isinstance(doc, dict):
        raise ValueError(f"cannot apply {op.op} at {op.path!r}: the document is not an object")
    parts = op.path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if child is None and op.op == "remove":
            return doc  # nothing there to remove; do not create the parents
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"cannot apply {op.op} at {op.path!r}: {part!r} is not an object")
        node = child
    last = parts[-1]
    if op.op == "remove":
        node.pop(last, None)
    else:
        node[last] = _apply_at(node.get(last), op)
    return doc


def _apply_at(current: JSON, op: UpdateOp) -> JSON:
    if op.op == "set":
        return copy.deepcopy(op.value)
    if op.op == "remove":
        return None
    if op.op == "merge":
        base = dict(current) if isinstance(current, dict) else {}
        base.update(copy.deepcopy(op.value))
        return base
    number = 0 if current is None else current
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError(f"cannot {op.op} {op.path or 'the document'}: it is {number!r}")
    return number + op.value if op.op == "increment" else number - op.value
