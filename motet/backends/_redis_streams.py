"""Stream storage in Redis: the `StreamBackend` half of `RedisBackend`.

Keys, under the backend's prefix `p`:

- `p:stream:items:{name}:{group}`: a hash per group, item id -> item JSON;
- `p:stream:seq`: a hash, `{name}:{group}` -> the group's last event id (also the list of
  groups: a stream name holds no ':');
- `p:stream:log:{name}:{group}`: a list of the group's last `LOG_LENGTH` changes (JSON), for
  clients resuming with Last-Event-ID;
- `p:stream:feed`: one Redis stream of every change of every group (capped at about
  `FEED_LENGTH` entries), which every instance follows with a blocking XREAD; that is how a
  change made through instance 1 reaches an SSE client of instance 2.

One script writes the item, bumps the event id, appends to the log and to the feed, so a
change is in all four or in none, and event ids follow the feed's order.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from .._convert import structure
from .._envelope import JSON
from ._json_copy import json_copy
from ._protocol import StreamFollower
from ._redis_link import RECONNECT_BACKOFF, RedisScripts
from ._stream_records import (
    LOG_LENGTH,
    StreamChange,
    StreamSnapshot,
    check_key,
    check_stream_name,
)

FEED_LENGTH = 10_000  # changes kept in the shared feed (a follower further behind resyncs)
FOLLOW_BATCH = 500
FOLLOW_BLOCK_MS = 2000

STREAM_WRITE = """
local p, op, name, group, id, data = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local loglen, feedlen = tonumber(ARGV[7]), tonumber(ARGV[8])
local field = name .. ':' .. group
local items = p .. ':stream:items:' .. field
local kind
if op == 'set' then
  if redis.call('HSET', items, id, data) == 1 then kind = 'create' else kind = 'update' end
elseif op == 'delete' then
  data = redis.call('HGET', items, id)
  if not data then return false end
  redis.call('HDEL', items, id)
  kind = 'delete'
else
  kind = 'event'
end
local seq = redis.call('HINCRBY', p .. ':stream:seq', field, 1)
local jid = 'null'
if id ~= '' then jid = cjson.encode(id) end
local entry = '{"stream":' .. cjson.encode(name) .. ',"group":' .. cjson.encode(group)
  .. ',"seq":' .. seq .. ',"kind":"' .. kind .. '","id":' .. jid .. ',"data":' .. data .. '}'
local log = p .. ':stream:log:' .. field
redis.call('RPUSH', log, entry)
redis.call('LTRIM', log, -loglen, -1)
redis.call('XADD', p .. ':stream:feed', 'MAXLEN', '~', feedlen, '*', 'c', entry)
return entry
"""

# {seq, items as a flat id/data list} or {seq, log entries}, read atomically.
STREAM_READ = """
local p, what, name, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local field = name .. ':' .. group
local seq = redis.call('HGET', p .. ':stream:seq', field) or '0'
if what == 'items' then
  return {seq, redis.call('HGETALL', p .. ':stream:items:' .. field)}
end
return {seq, redis.call('LRANGE', p .. ':stream:log:' .. field, 0, -1)}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(entry: Any) -> StreamChange:
    # Written by STREAM_WRITE from motet's own fields: the record's JSON shape.
    return structure(json.loads(_text(entry)), StreamChange)


class RedisStreamsMixin(RedisScripts):
    """The StreamBackend half of `RedisBackend`."""

    async def _stream_write(
        self, op: str, stream: str, group: str, id: str | None, data: JSON
    ) -> StreamChange | None:
        check_stream_name(stream)
        check_key("group", group)
        if id is not None:
            check_key("item id", id)
        self._running()
        text = json.dumps(
            json_copy(data, where=f"stream {stream!r} group {group!r}"), separators=(",", ":")
        )
        args = [op, stream, group, id or "", text, LOG_LENGTH, FEED_LENGTH]
        entry = await self._script(f"{op} a stream item", STREAM_WRITE, args)
        return None if entry is None else _decode(entry)

    async def stream_set(self, stream: str, group: str, id: str, data: JSON) -> StreamChange:
        change = await self._stream_write("set", stream, group, id, data)
        assert change is not None
        return change

    async def stream_delete(self, stream: str, group: str, id: str) -> StreamChange | None:
        return await self._stream_write("delete", stream, group, id, None)

    async def stream_send(
        self, stream: str, group: str, id: str | None, event: JSON
    ) -> StreamChange:
        change = await self._stream_write("send", stream, group, id, event)
        assert change is not None
        return change

    async def stream_get(self, stream: str, group: str, id: str) -> JSON:
        link, _ = self._running()
        key = f"{self.prefix}:stream:items:{stream}:{group}"
        raw = await link.call("read a stream item", lambda: link.client.hget(key, id))
        return None if raw is None else json.loads(raw)

    async def stream_items(self, stream: str, group: str) -> StreamSnapshot:
        seq, flat = await self._script("read a stream group", STREAM_READ, ["items", stream, group])
        pairs = [(_text(flat[i]), json.loads(_text(flat[i + 1]))) for i in range(0, len(flat), 2)]
        return StreamSnapshot(sorted(pairs, key=lambda p: p[0]), int(_text(seq)))

    async def stream_since(self, stream: str, group: str, after: int) -> list[StreamChange] | None:
        raw_seq, entries = await self._script(
            "read a stream log", STREAM_READ, ["log", stream, group]
        )
        seq = int(_text(raw_seq))
        if after < 0 or after > seq:
            return None
        if after == seq:
            return []
        changes = [c for c in map(_decode, entries) if c.seq > after]
        if not changes or changes[0].seq != after + 1:
            return None
        return changes

    async def _stream_fields(self) -> list[str]:
        link, _ = self._running()
        table = f"{self.prefix}:stream:seq"
        fields = await link.call("list stream groups", lambda: link.client.hkeys(table))
        return [_text(f) for f in fields]

    async def stream_groups(self, stream: str) -> list[str]:
        head = stream + ":"
        return sorted(f[len(head) :] for f in await self._stream_fields() if f.startswith(head))

    async def stream_names(self) -> list[str]:
        return sorted({f.split(":", 1)[0] for f in await self._stream_fields()})

    async def stream_follow(
        self,
        follower: StreamFollower,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        link, _ = self._running()
        feed = f"{self.prefix}:stream:feed"
        newest = await link.call(
            "read the stream feed", lambda: link.client.xrevrange(feed, count=1)
        )
        last = newest[0].identifier if newest else "0-0"
        task_status.started()
        tries = 0
        while True:
            try:
                news = await link.blocking.xread(
                    {feed: last}, count=FOLLOW_BATCH, block=FOLLOW_BLOCK_MS
                )
            except link.transient:
                tries += 1
                await trio.sleep(RECONNECT_BACKOFF.delay(tries))
                continue
            tries = 0
            for entries in (news or {}).values():
                for entry in entries:
                    last = entry.identifier
                    follower(_decode(entry.field_values["c"]))
