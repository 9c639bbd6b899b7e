"""`ctx.state`: namespaced JSON documents over a StateBackend."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._envelope import JSON, check_name
from .._state_writes import StateChange, StateWrite
from ..backends._protocol import StateBackend

Jsonify = Callable[[Any], JSON]


class StateStore:
    """The state API handlers see. Values are stored as JSON (attrs / dataclass values are
    unstructured first); every write carries the trace id of the handler that made it, so the
    state triggers it fires join that trace."""

    __slots__ = ("_backend", "_jsonify", "_on_write", "trace_id")

    def __init__(
        self,
        backend: StateBackend,
        jsonify: Jsonify,
        trace_id: str,
        on_write: Callable[[StateChange], None] | None = None,
    ) -> None:
        self._backend = backend
        self._jsonify = jsonify
        self._on_write = on_write
        self.trace_id = trace_id

    async def _write(self, namespace: str, key: str, write: StateWrite) -> StateChange:
        _check_names(namespace, key)
        change = await self._backend.state_write(namespace, key, write, trace_id=self.trace_id)
        if self._on_write is not None and change.event:
            self._on_write(change)
        return change

    async def get(self, namespace: str, key: str, default: JSON = None) -> JSON:
        _check_names(namespace, key)
        value = await self._backend.state_get(namespace, key)
        return default if value is None else value

    async def set(self, namespace: str, key: str, value: Any) -> JSON:
        """Replace the document; returns the stored value."""
        if value is None:
            raise ValueError(
                f"state.set({namespace!r}, {key!r}, None): use state.delete to remove a key"
            )
        change = await self._write(namespace, key, StateWrite.set(self._jsonify(value)))
        return change.value

    async def update(
        self, namespace: str, key: str, change: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> JSON:
        """Merge a dict into the document, or apply a list of ops
        (`{"op": "increment", "path": "count", "value": 1}`) atomically; returns the new value."""
        if isinstance(change, Mapping):
            change = self._jsonify(dict(change))
        result = await self._write(namespace, key, StateWrite.update(change))
        return result.value

    async def delete(self, namespace: str, key: str) -> JSON:
        """Remove the key; returns the value it had (None if it was absent)."""
        change = await self._write(namespace, key, StateWrite.delete())
        return change.old_value

    async def list(self, namespace: str) -> builtins.list[JSON]:
        """Every value of the namespace, ordered by key."""
        _check_names(namespace)
        return [value for _key, value in await self._backend.state_list(namespace)]

    get_group = list
    getGroup = list

    async def items(self, namespace: str) -> builtins.list[tuple[str, JSON]]:
        _check_names(namespace)
        return await self._backend.state_list(namespace)

    async def keys(self, namespace: str) -> builtins.list[str]:
        return [key for key, _value in await self.items(namespace)]

    async def list_groups(self) -> builtins.list[str]:
        return await self._backend.state_groups()

    listGroups = list_groups

    async def clear(self, namespace: str) -> int:
        _check_names(namespace)
        return await self._backend.state_clear(namespace, trace_id=self.trace_id)


def _check_names(namespace: Any, key: Any = "-") -> None:
    for what, value in (("namespace", namespace), ("key", key)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"state {what} must be a non-empty string, got {value!r}")
        check_name(value, f"state {what}")
