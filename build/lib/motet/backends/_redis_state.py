"""State (namespaced JSON documents) and cron marks of the Redis backend.

A write is applied by a script (`_redis_lua_state.STATE_APPLY`): Redis applies the
`StateWrite` to the stored JSON text itself, stores the result and publishes the change
event, so a write never conflicts, however many writers share a key. Concurrent writes are
group-committed (`GroupCommit`): the writes submitted while one script call is in flight go
together in the next, so many writers cost one round trip (and one fsync) per batch, as the
SQLite backend's writer does. The few writes the
script cannot apply exactly (see its module) take the optimistic path: read the stored
text, apply the write in Python (the code every backend uses), then a compare-and-set
script stores the new value only if the stored text is still the one read; on a conflict
it reads again. Every script call carries an operation id, so a call retried after a lost
reply is not applied twice.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .._envelope import JSON, Envelope, new_id, state_topic
from .._errors import BackendError
from .._state_writes import StateChange, StateWrite, change_event, state_change
from . import _redis_codec as codec
from . import _redis_lua_admin as lua_admin
from . import _redis_lua_state as lua_state
from ._redis_link import GroupCommit, RedisScripts

_MAX_CONFLICTS = 1000  # writers racing on one key; beyond this something is wrong


def _encode(value: JSON, where: str) -> str:
    codec.check_keys(value, where=where)
    return codec.encode_json(value, where=where)


# Stand-ins for the parts of a change event the script fills in: JSON text of their own
# (`"\u0000V"`) that no encoded namespace or key can contain unless it holds these very
# characters (then the write takes the compare-and-set path).
_SLOTS = ("\x00V", "\x00O", "\x00E")


def _event_pieces(namespace: str, key: str, trace_id: str, now: float) -> list[str] | None:
    """The change event's envelope text cut where the script puts the value, the old value
    and the event name: [before value, before old value, before event name, after it]."""
    value, old, event = _SLOTS
    template = StateChange(namespace, key, value, old, event)
    text = codec.encode_envelope(change_event(template, trace_id, now))
    pieces: list[str] = []
    for slot in _SLOTS:
        head, *rest = text.split(codec.encode_json(slot, where="a slot"))
        if len(rest) != 1:
            return None
        pieces.append(head)
        text = rest[0]
    pieces.append(text)
    pieces[-2] += '"'  # the event name is a string: the script writes its bare text
    pieces[-1] = '"' + pieces[-1]
    return pieces


def _write_args(write: StateWrite, where: str) -> list[str]:
    if write.kind == "delete" or (write.kind == "set" and write.value is None):
        return ["delete"]
    if write.kind == "set":
        return ["set", _encode(write.value, where)]
    args = ["update", str(len(write.ops))]
    for op in write.ops:
        parts = op.path.split(".") if op.path else []
        args += (op.op, _encode(op.value, where), str(len(parts)))
        for part in parts:
            args += (codec.encode_json(part, where=where)[1:-1], json.dumps(part)[1:-1])
    return args


def _canonical(value: JSON) -> str:
    """JSON text equal for equal JSON values (1, 1.0 and true stay different)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class RedisStateMixin(RedisScripts):
    """The StateBackend and ScheduleBackend halves of `RedisBackend`."""

    _states: GroupCommit[bytes]  # state writes, made and run by RedisBackend

    async def _flush_state(self, items: list[bytes]) -> list[Any]:
        # A change is remembered under its op id as long as a receive's leases (see
        # RedisBackend): a call retried after a lost reply gets the same changes back.
        memo = math.ceil(self.options.reconnect_timeout) + 60
        args = [memo, *items]
        replies: list[Any] = await self._script("write state", lua_state.STATE_APPLY, args)
        return replies

    async def _state_raw(self, namespace: str, key: str) -> str | None:
        link, _ = self._running()
        bucket = f"{self.prefix}:state:{namespace}"
        raw: str | None = await link.call("read state", lambda: link.client.hget(bucket, key))
        return raw

    async def state_get(self, namespace: str, key: str) -> JSON:
        raw = await self._state_raw(namespace, key)
        return None if raw is None else codec.decode_json(raw)

    async def state_write(
        self, namespace: str, key: str, write: StateWrite, *, trace_id: str
    ) -> StateChange:
        _, clock = self._running()
        where = f"state {namespace!r} key {key!r}"
        pieces = _event_pieces(namespace, key, trace_id, clock.now())
        if pieces is not None:
            args = [new_id(), namespace, key, state_topic(namespace), *pieces]
            args += _write_args(write, where)
            # Encoded here: a name without a UTF-8 form fails this caller, not the batch.
            what = f"{where}: the namespace or key"
            items = [str(len(args)).encode(), *(codec.to_bytes(a, what) for a in args)]
            self._running()
            reply = await self._states.submit(items)
            if reply[0] == "error":
                raise BackendError(f"Redis at {self.where} failed to write {where}: {reply[1]}")
            if reply[0] == "applied":
                # Retried after a lost reply; the change was too large to remember (see
                # STATE_APPLY): the value is read back, the old one is no longer known.
                value = await self.state_get(namespace, key)
                return StateChange(namespace, key, value, None, reply[1])
            if reply[0] == "ok":
                _, event, old_text, new_text = reply
                return StateChange(
                    namespace,
                    key,
                    codec.decode_json(new_text) if new_text else None,
                    codec.decode_json(old_text) if old_text else None,
                    event,
                )
        return await self._state_write_cas(namespace, key, write, trace_id, where)

    async def _state_write_cas(
        self, namespace: str, key: str, write: StateWrite, trace_id: str, where: str
    ) -> StateChange:
        """Read, apply in Python, compare-and-set; for writes the script cannot apply."""
        _, clock = self._running()
        for _ in range(_MAX_CONFLICTS):
            raw = await self._state_raw(namespace, key)
            old = None if raw is None else codec.decode_json(raw)
            new_text = None
            new = write.apply(old)  # a ValueError leaves the stored value as it is
            if new is not None:
                new_text = _encode(new, where)
                new = codec.decode_json(new_text)  # what a reader will get back
            change = await self._compare_and_set(
                namespace, key, raw, old, new, new_text, trace_id, clock.now()
            )
            if change is not None:
                return change
        raise BackendError(
            f"{where} in Redis at {self.prefix!r}: the value changed under "
            f"{_MAX_CONFLICTS} write attempts in a row; too many writers on one key"
        )

    async def _compare_and_set(
        self,
        namespace: str,
        key: str,
        raw: str | None,
        old: JSON,
        new: JSON,
        new_text: str | None,
        trace_id: str,
        now: float,
    ) -> StateChange | None:
        """The change, or None when the stored text is no longer `raw` (a conflict)."""
        if raw is not None and new is not None and _canonical(old) == _canonical(new):
            return state_change(namespace, key, old, new, changed=False)
        if raw is None and new is None:
            return state_change(namespace, key, None, None, changed=False)
        change = state_change(namespace, key, old, new)
        envelope = change_event(change, trace_id, now)
        args = [new_id(), namespace, key, raw or "", new_text or ""]
        args += codec.publish_args(envelope)
        status = await self._script("write state", lua_admin.STATE_CAS, args)
        return change if status == "ok" else None

    async def state_list(self, namespace: str) -> list[tuple[str, JSON]]:
        link, _ = self._running()
        bucket = f"{self.prefix}:state:{namespace}"
        stored = await link.call("list state", lambda: link.client.hgetall(bucket))
        return [(k, codec.decode_json(stored[k])) for k in sorted(stored)]

    async def state_groups(self) -> list[str]:
        link, _ = self._running()
        names = await link.call(
            "list state namespaces", lambda: link.client.smembers(f"{self.prefix}:statens")
        )
        return sorted(names)

    async def state_clear(self, namespace: str, *, trace_id: str) -> int:
        link, clock = self._running()
        bucket = f"{self.prefix}:state:{namespace}"
        deleted = 0
        while True:
            stored = await link.call("list state", lambda: link.client.hgetall(bucket))
            if not stored:
                return deleted
            for key in sorted(stored):
                old = codec.decode_json(stored[key])
                change = await self._compare_and_set(
                    namespace, key, stored[key], old, None, None, trace_id, clock.now()
                )
                deleted += change is not None  # a conflict: the next round reads it again

    # -- schedule --------------------------------------------------------------------------

    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        self._running()
        args = [step, codec.epoch(scheduled), new_id(), self.options.tick_ttl]
        if tick is not None:
            args.extend(codec.publish_args(tick))  # refuses a non-JSON payload before Redis
        return int(await self._script("claim a cron tick", lua_admin.CLAIM_TICK, args)) == 1

    async def last_tick(self, step: str) -> float | None:
        link, _ = self._running()
        table = f"{self.prefix}:lasttick"
        raw = await link.call("read the last cron tick", lambda: link.client.hget(table, step))
        return None if raw is None else float(raw)
