"""The runtime's streams: `ctx.streams.<name>` for handlers, and what the gateway and the
console read (definitions, the hub, the backend).

Items follow Motia's shape: an item is its data with its `id` (`set` stores and returns
`{**data, "id": id}` when the data is an object), `get_group` returns the items of a group,
`send(channel, event)` sends an ephemeral `{"type", "data"}` event to a group's subscribers
(`channel` is `{"groupId": ..., "id": ...}` as in Motia, or a group name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cattrs
import trio

from .._backoff import Backoff
from .._envelope import JSON
from .._errors import MotetError
from ..backends._protocol import StreamBackend, supports_streams
from ..backends._stream_records import StreamChange, StreamSnapshot, check_key
from ..steps._schema import schema_problem, to_json, validate
from ._config import StreamConfig, check_stream_set
from ._hub import DEFAULT_CAPACITY, StreamHub

FOLLOW_BACKOFF = Backoff(initial=0.1, cap=5.0)


class UnknownStreamError(MotetError, AttributeError):
    """`ctx.streams.<name>` names no stream of the project."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none (add a *.stream.py file to the steps folder)"
        super().__init__(f"no stream named {name!r}; declared streams: {listed}")
        self.name = name


class StreamService:
    """Definitions, storage and local fan-out of a runtime's streams. `run` follows the
    backend (every instance's changes) into the hub until cancelled."""

    def __init__(
        self,
        configs: Sequence[StreamConfig],
        backend: object,
        converter: cattrs.Converter,
        *,
        capacity: int = DEFAULT_CAPACITY,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        check_stream_set(configs)
        self.on_error = on_error  # told when following the backend fails (then retried)
        self.configs: dict[str, StreamConfig] = {c.name: c for c in configs}
        self.backend: StreamBackend | None = backend if supports_streams(backend) else None  # type: ignore[assignment]
        self.backend_name = str(getattr(backend, "name", type(backend).__name__))
        self.converter = converter
        self.hub = StreamHub(capacity)
        self.api = Streams(self)

    def config(self, name: str) -> StreamConfig | None:
        return self.configs.get(name)

    def storage(self) -> StreamBackend:
        if self.backend is None:
            raise MotetError(
                f"the {self.backend_name} backend does not store streams; use the memory, "
                "sqlite or redis backend"
            )
        return self.backend

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the backend into the hub until cancelled. A failure before following
        started is raised; one later (the backend unreachable for long) is logged through
        `on_error`, every subscriber is ended so that it reconnects and resumes from its
        last event id (changes made meanwhile reached nobody here), and following starts
        again after a backoff."""
        if self.backend is None or not self.configs:
            task_status.started()
            return
        status = _Status(task_status)
        tries = 0
        while True:
            try:
                await self.backend.stream_follow(self.hub.deliver, task_status=status)
            except Exception as exc:
                if not status.done:
                    raise
                tries += 1
                if self.on_error is not None:
                    self.on_error(
                        f"following stream changes failed (try {tries}): "
                        f"{type(exc).__name__}: {exc}",
                        exc,
                    )
                self.hub.end_all("the server lost track of stream changes; reconnect")
            await trio.sleep(FOLLOW_BACKOFF.delay(tries))

    def item(self, config: StreamConfig, id: str, data: Any) -> JSON:
        """The stored form of `data`: validated against the stream's schema when it has one
        the converter understands, as JSON, with `id` set when it is an object."""
        if config.schema is not None and schema_problem(config.schema) is None:
            data = validate(
                self.converter, data, config.schema, what=f"stream {config.name!r} item"
            )
        value = to_json(self.converter, data)
        if isinstance(value, dict):
            value = {**value, "id": id}
        return value


class _Status:
    """Forwards the first `started()` and remembers that it happened."""

    def __init__(self, outer: trio.TaskStatus[None]) -> None:
        self.outer = outer
        self.done = False

    def started(self, value: None = None) -> None:
        if not self.done:
            self.done = True
            self.outer.started()


class StreamClient:
    """`ctx.streams.<name>`: Motia's stream methods (camelCase aliases included)."""

    def __init__(self, service: StreamService, config: StreamConfig) -> None:
        self._service = service
        self.config = config
        self.name = config.name

    async def set(self, group_id: str, id: str, data: Any) -> JSON:
        """Create or update item `id` of the group; returns the stored item. Subscribers of
        the group get a "create" or "update" change."""
        check_key("group id", group_id)
        check_key("item id", id)
        item = self._service.item(self.config, id, data)
        change = await self._service.storage().stream_set(self.name, group_id, id, item)
        return change.data

    async def get(self, group_id: str, id: str) -> JSON:
        """The item, or None."""
        return await self._service.storage().stream_get(self.name, group_id, id)

    async def delete(self, group_id: str, id: str) -> JSON:
        """Delete the item; returns it as it was (None when there was none)."""
        change = await self._service.storage().stream_delete(self.name, group_id, id)
        return None if change is None else change.data

    async def get_group(self, group_id: str) -> list[JSON]:
        """Every item of the group, ordered by id."""
        snapshot = await self._service.storage().stream_items(self.name, group_id)
        return [data for _, data in snapshot.items]

    getGroup = get_group

    async def list_groups(self) -> list[str]:
        return await self._service.storage().stream_groups(self.name)

    listGroups = list_groups

    async def send(self, channel: Mapping[str, Any] | str, event: Any) -> None:
        """An ephemeral event (`{"type": ..., "data": ...}`) for the group's subscribers,
        not stored as an item. `channel` is `{"groupId": g}` or `{"groupId": g, "id": i}`
        (Motia's shape), or the group name."""
        if isinstance(channel, str):
            group, id = channel, None
        elif isinstance(channel, Mapping):
            group = channel.get("groupId", channel.get("group_id"))
            id = channel.get("id")
        else:
            raise TypeError(
                f"stream {self.name!r}: send() takes a channel {{'groupId': ..., 'id': ...}} "
                f"or a group name, got {channel!r}"
            )
        check_key("group id", group)
        if id is not None:
            check_key("item id", id)
        payload = to_json(self._service.converter, event)
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise TypeError(
                f"stream {self.name!r}: send() takes an event {{'type': str, 'data': ...}}, "
                f"got {event!r}"
            )
        await self._service.storage().stream_send(self.name, group, id, payload)

    async def snapshot(self, group_id: str) -> StreamSnapshot:
        return await self._service.storage().stream_items(self.name, group_id)

    async def changes_since(self, group_id: str, after: int) -> list[StreamChange] | None:
        return await self._service.storage().stream_since(self.name, group_id, after)


class Streams:
    """`ctx.streams`: one `StreamClient` per declared stream, as attributes
    (`ctx.streams.videoProgress`) or items (`ctx.streams["video-progress"]`)."""

    def __init__(self, service: StreamService) -> None:
        self._service = service
        self._clients: dict[str, StreamClient] = {}

    def __getattr__(self, name: str) -> StreamClient:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> StreamClient:
        client = self._clients.get(name)
        if client is None:
            config = self._service.config(name)
            if config is None:
                raise UnknownStreamError(name, list(self._service.configs))
            client = self._clients[name] = StreamClient(self._service, config)
        return client

    def __contains__(self, name: object) -> bool:
        return name in self._service.configs

    def __iter__(self) -> Any:
        return iter(sorted(self._service.configs))


def sync_streams(streams: Streams, run: Callable[..., Any]) -> Any:
    """`ctx.streams` for a plain `def` handler in a worker thread: the same methods, blocking
    (`run` is `trio.from_thread.run`)."""
    return _SyncStreams(streams, run)


class _SyncStreams:
    def __init__(self, streams: Streams, run: Callable[..., Any]) -> None:
        self._streams = streams
        self._run = run

    def __getattr__(self, name: str) -> _SyncClient:
        if name.startswith("__"):
            raise AttributeError(name)
        return _SyncClient(self._streams[name], self._run)

    __getitem__ = __getattr__


class _SyncClient:
    def __init__(self, client: StreamClient, run: Callable[..., Any]) -> None:
        self._client = client
        self._run = run

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(lambda: method(*args, **kwargs))

        return call
