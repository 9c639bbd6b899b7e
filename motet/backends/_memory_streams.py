"""Stream storage in memory: the reference `StreamBackend` (mixed into `MemoryBackend`).

Several runtimes sharing one `MemoryBackend` (how tests model several instances) each follow
it, so a change made through one reaches the subscribers of all of them, as over Redis.
"""

from __future__ import annotations

from collections import deque

import attrs
import trio

from .._envelope import JSON
from ._json_copy import json_copy
from ._protocol import StreamFollower
from ._stream_records import (
    LOG_LENGTH,
    ChangeKind,
    StreamChange,
    StreamSnapshot,
    check_key,
    check_stream_name,
)


@attrs.define
class _Group:
    items: dict[str, JSON] = attrs.Factory(dict)
    seq: int = 0
    log: deque[StreamChange] = attrs.Factory(lambda: deque(maxlen=LOG_LENGTH))


class MemoryStreams:
    """The StreamBackend half of `MemoryBackend`."""

    _stream_groups: dict[tuple[str, str], _Group]
    _stream_followers: list[StreamFollower]

    def _streams_init(self) -> None:
        self._stream_groups = {}
        self._stream_followers = []

    def _group(self, stream: str, group: str) -> _Group:
        check_stream_name(stream)
        check_key("group", group)
        found = self._stream_groups.get((stream, group))
        if found is None:
            found = self._stream_groups[(stream, group)] = _Group()
        return found

    def _change(
        self, stream: str, group: str, kind: ChangeKind, id: str | None, data: JSON
    ) -> StreamChange:
        state = self._group(stream, group)
        state.seq += 1
        change = StreamChange(stream, group, state.seq, kind, id, data)
        state.log.append(change)
        for follower in list(self._stream_followers):
            follower(change)
        return change

    async def stream_set(self, stream: str, group: str, id: str, data: JSON) -> StreamChange:
        await trio.lowlevel.checkpoint()
        check_key("item id", id)
        stored = json_copy(data, where=f"stream {stream!r} group {group!r} item {id!r}")
        state = self._group(stream, group)
        kind: ChangeKind = "update" if id in state.items else "create"
        state.items[id] = stored
        return self._change(stream, group, kind, id, stored)

    async def stream_delete(self, stream: str, group: str, id: str) -> StreamChange | None:
        await trio.lowlevel.checkpoint()
        check_key("item id", id)
        state = self._group(stream, group)
        old = state.items.pop(id, _ABSENT)
        if old is _ABSENT:
            return None
        return self._change(stream, group, "delete", id, old)

    async def stream_send(
        self, stream: str, group: str, id: str | None, event: JSON
    ) -> StreamChange:
        await trio.lowlevel.checkpoint()
        if id is not None:
            check_key("item id", id)
        stored = json_copy(event, where=f"stream {stream!r} group {group!r} event")
        return self._change(stream, group, "event", id, stored)

    async def stream_get(self, stream: str, group: str, id: str) -> JSON:
        await trio.lowlevel.checkpoint()
        state = self._stream_groups.get((stream, group))
        if state is None or id not in state.items:
            return None
        return json_copy(state.items[id])

    async def stream_items(self, stream: str, group: str) -> StreamSnapshot:
        await trio.lowlevel.checkpoint()
        state = self._stream_groups.get((stream, group))
        if state is None:
            return StreamSnapshot([], 0)
        return StreamSnapshot(
            [(k, json_copy(state.items[k])) for k in sorted(state.items)], state.seq
        )

    async def stream_since(self, stream: str, group: str, after: int) -> list[StreamChange] | None:
        await trio.lowlevel.checkpoint()
        state = self._stream_groups.get((stream, group))
        seq = state.seq if state is not None else 0
        if after > seq or after < 0:
            return None
        if after == seq:
            return []
        assert state is not None
        if not state.log or state.log[0].seq > after + 1:
            return None
        return [c for c in state.log if c.seq > after]

    async def stream_groups(self, stream: str) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted(g for (s, g) in self._stream_groups if s == stream)

    async def stream_names(self) -> list[str]:
        await trio.lowlevel.checkpoint()
        return sorted({s for (s, _) in self._stream_groups})

    async def stream_follow(
        self,
        follower: StreamFollower,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._stream_followers.append(follower)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._stream_followers.remove(follower)


_ABSENT: JSON = object()
