"""The Redis backend: queues on Redis Streams, state, and once-per-tick cron marks, shared by
every instance (process, host) pointed at the same Redis.

Queues: one stream per topic and one consumer group per subscribing step, so every step gets
each message and the instances of a step compete for it. The Lua scripts in `_redis_lua`
keep each message of a subscription in exactly one condition (ready, leased, delayed, fifo-
parked) with leases and retry times on the runtime's clock (so MockClock drives them), and
an expired lease is reclaimed by whichever instance receives next, with attempt + 1.

Throughput comes from batching: `receive` leases up to `max_count` messages in one script
call; concurrent `publish` and `ack` calls are merged into one script call per
round trip (`GroupCommit`), so a busy instance makes a few round trips per batch, not per
message.

Latency comes from the blocking read: a receiver of a standard subscription that finds
nothing waits in XREADGROUP on a connection of its own, so Redis hands it a new message
while it serves the publish, under the same fsync. The delivery is returned at once and its
lease recorded just after (ADOPT); its ack, extend, retry or bury wait for that. If the
instance dies in between, the entry sits in the group's pending list with no lease: the
orphan sweep (ORPHANS, every `trim_interval`) re-queues entries idle for a lease that no
condition holds. fifo and priority subscriptions are ordered across the whole queue, so
their receivers wait for a ring instead and lease through RECEIVE. The scripts and the
blocking reads go over `Wire` (hiredis); coredis serves the rest.

Durability assumption: Redis runs with `appendonly yes` and `appendfsync always`, so what a
script wrote is on disk before Redis replies. Then a message `publish` returned for, and an
`ack` that returned, survive a Redis crash (kill -9). With `appendfsync everysec` (faster:
no fsync per round trip) a crash of Redis itself can lose up to a second of writes: lost
publishes are lost messages, lost acks are redeliveries. WAITAOF (Redis 7.2) is not used.
A Redis restart mid-run is ridden out by retrying with backoff
(`RedisOptions.reconnect_timeout`). Redis Cluster is not supported (the scripts touch keys
they compute).

Clocks: lease deadlines and retry times are written by whichever instance leased or retried,
from its own runtime clock, so the hosts' clocks must agree to well within a lease (NTP).
A `receive` whose reply is lost (Redis crashed or the connection broke after its script ran)
is retried with the same op id and gets the same deliveries (receipts, attempts) back.
At-least-once: a `receive` cancelled while its script or its blocking read was in flight
may have leased messages nobody holds; they come back after the lease, with attempt + 1.
"""

from __future__ import annotations

import functools
import math
import os
import socket
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import attrs
import trio

from .._clock import Clock
from .._envelope import (
    DEFAULT_DEDUP_WINDOW,
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    Subscription,
    expiry_of,
    new_id,
    random_id,
)
from .._errors import BackendError, BackendUnavailable
from .._redact import redact
from . import _redis_codec as codec
from . import _redis_lua as lua
from . import _redis_lua_admin as lua_admin
from . import _redis_lua_later as lua_later
from . import _redis_lua_rate as lua_rate
from . import _redis_lua_state as lua_state
from ._protocol import Announce, Backend, Leased
from ._redis_link import Doorbell, GroupCommit, RedisLink, RedisOptions, knock, watch
from ._redis_state import RedisStateMixin
from ._redis_status import SCRIPTS as STATUS_SCRIPTS
from ._redis_status import RedisStatusMixin
from ._redis_streams import RedisStreamsMixin
from ._redis_wire import Address, ReplyError, WireError

# Most deliveries per script call: a Lua `unpack` takes at most ~8000 values, and a script
# blocks Redis while it runs, so huge batches are split (a receive leases at most this many).
_CHUNK = 1000
# s past a blocking read's deadline before `knock` ends it (Redis's BLOCK timeout ends it
# on time when the runtime's clock is the real one)
_KNOCK_GRACE = 0.25
# s: how long a cancelled blocking read may spend putting back what Redis handed it meanwhile
_REQUEUE_DEADLINE = 5.0

_SCRIPTS = (
    lua_admin.DECLARE,
    lua.PUBLISH,
    lua.RECEIVE,
    lua.ACK,
    lua.EXTEND,
    lua.RETRY,
    lua.BURY,
    lua.ADOPT,
    lua.ORPHANS,
    lua_later.PUBLISH_LATER,
    lua_later.LATER_COUNTS,
    lua_later.EXPIRE,
    lua_admin.STATE_CAS,
    lua_state.STATE_APPLY,
    lua_admin.CLAIM_TICK,
    lua_admin.DEPTH,
    lua_admin.TRIM,
    lua_admin.FORGET_CONSUMERS,
    lua_admin.REDRIVE,
    lua_admin.DISCARD,
    lua_rate.RATE_RECEIVE,
    *STATUS_SCRIPTS,
)


class RedisBackend(RedisStateMixin, RedisStreamsMixin, RedisStatusMixin):
    """Queues, state and cron marks in Redis at `url` (redis://host:port/db), under `prefix`.

    Instances sharing one Redis and prefix form one deployment. Start with
    `await nursery.start(backend.run, clock)`; without coredis installed, or with Redis
    unreachable, `run` raises `BackendUnavailable` saying what to do.
    """

    name = "redis"

    def __init__(
        self, url: str, *, prefix: str = "motet", options: RedisOptions | None = None
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "Redis backend URL must start with redis://, rediss:// or unix://, got "
                f"{redact(url)!r}"
            )
        Address.parse(url)  # a malformed URL fails here, not when the backend starts
        if not prefix or any(c in prefix for c in " \n"):
            raise ValueError(f"Redis key prefix must be non-empty without spaces, got {prefix!r}")
        self.url = url
        self.where = redact(url)  # the URL as messages show it: without its credentials
        self.prefix = prefix
        self.options = options or RedisOptions()
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{random_id()[:8]}"
        self._link: RedisLink | None = None
        self._clock: Clock | None = None
        self._nursery: trio.Nursery | None = None
        self._declared: dict[str, Subscription] = {}
        self._known: set[str] = set()  # subscription keys known to be declared (by anyone)
        self._topics: set[str] = set()
        self._bells: dict[str, Doorbell] = {}
        # (sub, ref) -> set once ADOPT recorded the lease of a delivery a blocking read
        # handed out; ack, extend, retry and bury of that delivery wait for it
        self._adopting: dict[tuple[str, str], trio.Event] = {}
        self._requeues: set[trio.CancelScope] = set()  # shielded; the stop cancels them
        self._receiving: dict[str, Subscription] = {}  # the subscriptions receive was called for
        self._orphan_start: dict[str, str] = {}  # where the next orphan sweep of a sub starts
        self._publishes = GroupCommit[bytes]("publish", self._flush_publish, self.options.batch)
        self._acks = GroupCommit[str]("acknowledge", self._flush_ack, self.options.batch)
        self._states = GroupCommit[bytes]("write state", self._flush_state, self.options.batch)
        self._laters = GroupCommit[list[bytes]](
            "publish messages", self._flush_later, self.options.batch
        )
        # s Redis remembers what a publish or a receive did: a retry comes within
        # reconnect_timeout of noticing the lost reply; the margin covers the time it took
        # to notice. (An hour would keep a mark per flush: 36 million at 10k emits/s.)
        self._op_memo = math.ceil(self.options.reconnect_timeout) + 60
        self._memo_arg = str(self._op_memo).encode()

    @property
    def write_failure(self) -> str | None:
        """Why calls fail right now (Redis unreachable), or None when they work."""
        return None if self._link is None else self._link.failure

    # -- lifecycle -------------------------------------------------------------------------

    async def run(
        self, clock: Clock, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._link is not None:
            raise BackendError(
                f"this Redis backend for {self.where} is already running; create one "
                "RedisBackend per instance (they share state through Redis)"
            )
        link = RedisLink(self.url, self.options)
        failure: BackendUnavailable | None = None
        async with link.client, link.blocking:
            try:
                await link.open()
                for source in _SCRIPTS:  # compiled once here, so a broken script fails loudly
                    await link.call(
                        "load a script", functools.partial(link.client.script_load, source)
                    )
            except BackendUnavailable as exc:
                failure = exc  # raised below, outside coredis's task group (no wrapping)
            else:
                async with trio.open_nursery() as nursery:
                    link.start(nursery)
                    await nursery.start(self._publishes.run)
                    await nursery.start(self._acks.run)
                    await nursery.start(self._states.run)
                    await nursery.start(self._laters.run)
                    nursery.start_soon(self._trim_forever)
                    self._link, self._clock, self._nursery = link, clock, nursery
                    try:
                        task_status.started(self)
                        await trio.sleep_forever()
                    finally:
                        self._link = self._clock = self._nursery = None
                        self._bells = {}  # their watchers end with this nursery
                        for scope in self._requeues:
                            scope.cancel()
                        nursery.cancel_scope.cancel()
                        await link.close_wires()
        if failure is not None:
            raise failure

    # -- queues ----------------------------------------------------------------------------

    async def declare(self, subscriptions: Sequence[Subscription]) -> None:
        self._running()
        for sub in subscriptions:
            args = [sub.topic, sub.key, sub.options.strategy]
            await self._script("declare subscription " + sub.key, lua_admin.DECLARE, args)
            self._declared[sub.key] = sub
            self._known.add(sub.key)
            self._topics.add(sub.topic)

    async def publish(
        self, envelopes: Sequence[Envelope], *, dedup_window: float = DEFAULT_DEDUP_WINDOW
    ) -> list[str]:
        self._running()
        items: list[bytes] = []
        for envelope in envelopes:
            # With a key, a delay or an expiry it needs PUBLISH_LATER (tested inline: a call
            # fewer per emit).
            if (
                envelope.key is not None
                or envelope.not_before is not None
                or envelope.expires_at is not None
            ):
                return await self._publish_later(envelopes, dedup_window)
            # Refuses non-JSON before anything, and encodes for this caller alone.
            items += codec.publish_bytes(envelope)
        if not items:
            await trio.lowlevel.checkpoint()
            return []
        await self._publishes.submit(items)
        if self._bells:  # receivers here need not wait for the watcher's round trip
            topics = {e.topic for e in envelopes}
            for bell in self._bells.values():
                if bell.topic in topics and not bell.blocking_read:
                    bell.ring()
        return [e.id for e in envelopes]

    async def _publish_later(self, envelopes: Sequence[Envelope], window: float) -> list[str]:
        """Publish with keys, delays or expiries (PUBLISH_LATER, group-committed)."""
        items: list[bytes] = []
        for envelope in envelopes:
            items += codec.publish_bytes(envelope) + codec.later_args(envelope)
            items.append(codec.millis(window).encode())
        ids: list[str] = await self._laters.submit([items])
        topics = {e.topic for e in envelopes}
        for bell in self._bells.values():
            if bell.topic in topics:
                bell.ring()  # a new message, or an earlier due time for receivers here
        return ids

    async def _flush_publish(self, items: list[bytes]) -> None:
        # `_script`, inline: a sequential producer flushes once per emit.
        if self._link is None:
            await trio.lowlevel.checkpoint_if_cancelled()  # stopping: as `_script` does
        link, _ = self._running()
        args = [self.prefix, new_id(), self._memo_arg, *items]
        script = link.script(lua.PUBLISH)
        await link.call("publish messages", functools.partial(script, keys=[], args=args))

    async def _flush_later(self, calls: list[list[bytes]]) -> list[list[str]]:
        """One PUBLISH_LATER for every waiting caller's messages; each gets its own ids."""
        _, clock = self._running()
        args: list[Any] = [new_id(), codec.millis(clock.now()), self._memo_arg]
        for items in calls:
            args += items
        ids = [
            str(i) for i in await self._script("publish messages", lua_later.PUBLISH_LATER, args)
        ]
        out: list[list[str]] = []
        for items in calls:
            count = len(items) // 9
            out.append(ids[:count])
            ids = ids[count:]
        return out

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        _link, clock = self._running()
        key = subscription.key
        bell = self._bells.get(key)
        if bell is None:
            bell = await self._start_watch(subscription)
        lease = subscription.options.lease
        while True:
            woken = bell.event()
            now = clock.now()
            count = min(max_count, _CHUNK)
            # A fresh op id per script call; RedisLink.call's retries after a lost reply
            # reuse it and get the same deliveries back (see RECEIVE).
            args = [
                key,
                self.consumer,
                codec.millis(now),
                codec.millis(now + lease),
                count,
                new_id(),
                self._op_memo,
                "" if subscription.options.ttl is None else codec.millis(subscription.options.ttl),
            ]
            reply = await self._script("receive from " + key, lua.RECEIVE, args)
            status = reply[0]
            if status != "ok":
                raise self._queue_error(key, status, reply)
            if len(reply) > 4:
                return _leased(reply, key, subscription.options.ttl)
            next_due = reply[1]
            deadline = trio.current_time() + self.options.poll
            if next_due:
                deadline = min(deadline, clock.to_trio(int(next_due) / 1000))
            bell.idle(reply[2], reply[3])
            if bell.blocking_read:
                got = await self._blocking_read(subscription, count, deadline, woken)
                if got:
                    return got
                continue
            with trio.move_on_at(deadline):
                await woken.wait()

    async def receive_limited(self, subscription: Subscription, max_count: int) -> Leased:
        limit = subscription.options.rate_limit
        if limit is None:
            return Leased(await self.receive(subscription, max_count))
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        _link, clock = self._running()
        key = subscription.key
        bell = self._bells.get(key)
        if bell is None:
            bell = await self._start_watch(subscription)
        lease = subscription.options.lease
        while True:
            woken = bell.event()
            now = clock.now()
            args = [
                key,
                self.consumer,
                codec.millis(now),
                codec.millis(now + lease),
                min(max_count, _CHUNK),
                new_id(),
                self._op_memo,
                "" if subscription.options.ttl is None else codec.millis(subscription.options.ttl),
                limit.count,
                repr(limit.period),
                limit.burst,
            ]
            reply = await self._script("receive from " + key, lua_rate.RATE_RECEIVE, args)
            status = reply[0]
            if status == "throttled":
                return Leased([], int(reply[1]) / 1000, reply[2] == "1")
            if status != "ok":
                raise self._queue_error(key, status, reply)
            if len(reply) > 4:
                deliveries = _leased(reply, key, subscription.options.ttl)
                return Leased(deliveries, int(reply[1]) / 1000, reply[2] == "1")
            deadline = trio.current_time() + self.options.poll
            if reply[1]:
                deadline = min(deadline, clock.to_trio(int(reply[1]) / 1000))
            bell.idle(reply[2], reply[3])
            with trio.move_on_at(deadline):
                await woken.wait()

    async def _blocking_read(
        self, subscription: Subscription, count: int, deadline: float, woken: trio.Event
    ) -> list[Delivery]:
        """Wait in XREADGROUP for new messages of a standard subscription, so a publish hands
        them to this consumer inside Redis, under the publish's own fsync: no second write
        and round trip before the handler starts. The leases are recorded by ADOPT after the
        deliveries are handed out (see `_adopt`). A ring or `deadline` ends the wait early
        (`knock`) so retries, re-drives and expired leases are looked at again."""
        # The backend may have stopped while this task, cancelled with it, got its last
        # reply: meet the cancellation rather than "not running".
        await trio.lowlevel.checkpoint_if_cancelled()
        link, clock = self._running()
        bell = self._bells[subscription.key]
        # One blocking read per subscription here at a time, from the read to its ADOPT
        # being under way: so a read whose reply was lost can tell its entries apart.
        async with bell.reading:
            if woken.is_set():
                return []
            wire = link.take_wire()
            try:
                await wire.connect()
            except WireError:
                await link.give_wire(wire)
                return []  # RECEIVE, next, meets the outage and retries with backoff
            stream = f"{self.prefix}:stream:{subscription.topic}"
            # Redis ends the wait at the deadline itself (on the real clock); `knock` ends it
            # after a grace, for clocks that jump (MockClock) or run fast. A long wait keeps
            # competing instances fair: Redis serves whoever has waited longest, and a
            # receiver that re-blocked every second would always be behind the one that
            # just handled a message.
            block_ms = max(1, math.ceil((deadline - trio.current_time()) * 1000))
            bell.blocking(wire, deadline + _KNOCK_GRACE)
            try:
                reply = await wire.call(
                    "XREADGROUP", "GROUP", subscription.key, self.consumer,
                    "COUNT", count, "BLOCK", block_ms, "STREAMS", stream, ">",
                )  # fmt: skip
            except WireError:
                # Redis may have served the read and lost the reply (a restart, a cut).
                await self._requeue_lost_read(subscription)
                return []
            except trio.Cancelled:
                await self._requeue_cancelled_read(subscription)
                raise
            except ReplyError:
                return []  # RECEIVE, next, says what is wrong (the group is gone)
            finally:
                del bell.blocked[wire]
                await link.give_wire(wire)  # (a cancelled read closed it: it connects anew)
            if not reply:
                return []
            nursery = self._nursery
            if nursery is None:  # stopped meanwhile: the orphan sweep re-queues what was read
                raise BackendError(f"the Redis backend for {self.where} stopped during a receive")
            return self._hand_out(subscription, reply[0][1], clock.now(), nursery)

    def _hand_out(
        self, subscription: Subscription, entries: Any, now: float, nursery: trio.Nursery
    ) -> list[Delivery]:
        """Deliveries of what a blocking read got; their leases are recorded by `_adopt`."""
        deliveries: list[Delivery] = []
        done = trio.Event()
        adopt: list[str] = [subscription.key, codec.millis(now + subscription.options.lease)]
        expired: list[str] = [subscription.key, codec.millis(now)]
        ttl = subscription.options.ttl
        for ref, values in entries:
            fields = dict(zip(values[::2], values[1::2], strict=True))
            envelope = codec.decode_envelope(fields["e"])
            deadline = expiry_of(envelope, ttl) if ttl is not None or "x" in fields else None
            if deadline is not None and deadline <= now:
                expired += (ref, codec.millis(deadline))  # kept as a dead letter by EXPIRE
                continue
            receipt = codec.receipt(ref, 1)
            deliveries.append(Delivery(envelope, subscription.key, 1, receipt, deadline))
            adopt += (ref, fields.get("g", ""), fields.get("p", ""))
            self._adopting[(subscription.key, ref)] = done
        if len(expired) > 2:
            nursery.start_soon(self._expire, expired)
        nursery.start_soon(self._adopt, adopt, deliveries, done)
        return deliveries

    async def _requeue_lost_read(self, subscription: Subscription) -> None:
        """Put back as ready what a blocking read of this consumer got but whose reply never
        arrived: pending for this consumer, held by no condition. Nobody saw them, so their
        next delivery is attempt 1. Leases still being recorded (ADOPT) are waited for first,
        so they are not mistaken for lost ones; the script call itself waits for Redis to be
        back (RedisLink.call)."""
        key = subscription.key
        for (sub, _), done in list(self._adopting.items()):
            if sub == key:
                await done.wait()
        start = "-"
        while True:
            args = [key, 0, start, 1000, self.consumer, "0"]
            start, _ = await self._script("re-queue a lost read", lua.ORPHANS, args)
            if start == "-":
                return

    async def _requeue_cancelled_read(self, subscription: Subscription) -> None:
        """The receiver was cancelled (a graceful stop, a timeout around `receive`) while
        blocked: Redis may have served the read in that instant, and the reply is gone with
        the connection. Put such entries back now, uncounted, as for a lost reply, rather than
        leave them to the orphan sweep (after a lease, as attempt 2). Not once the backend is
        stopping (a hard stop cancels both at once): then the orphan sweep takes over."""
        nursery = self._nursery
        if nursery is None or nursery.cancel_scope.cancel_called:
            return
        scope = trio.CancelScope(shield=True, deadline=trio.current_time() + _REQUEUE_DEADLINE)
        self._requeues.add(scope)
        try:
            # Redis away (BackendError): the orphan sweep re-queues them after a lease.
            with scope, suppress(BackendError):
                await self._requeue_lost_read(subscription)
        finally:
            self._requeues.discard(scope)

    async def _adopt(self, args: list[str], deliveries: list[Delivery], done: trio.Event) -> None:
        """Record the leases of what a blocking read handed out. If Redis stays away past
        reconnect_timeout the deliveries are left unrecorded: their acks find nothing to
        settle and the orphan sweep re-queues them after a lease (at-least-once)."""
        try:
            # One scheduling round first: the handlers these deliveries go to start ahead
            # of this write (their acks wait for it anyway).
            await trio.lowlevel.checkpoint()
            await self._script("record leases", lua.ADOPT, args)
        except BackendError:
            pass
        finally:
            for delivery in deliveries:
                self._adopting.pop(_adopt_key(delivery), None)
            done.set()

    async def _expire(self, args: list[str]) -> None:
        """Keep as dead letters the expired messages a blocking read handed out. If this
        never runs (Redis away, the instance died), the orphan sweep re-queues them, and
        they are then handed out (a second delivery never expires)."""
        with suppress(BackendError):
            await self._script("keep expired messages", lua_later.EXPIRE, args)
        for key in {args[0]}:
            bell = self._bells.get(key)
            if bell is not None:
                bell.ring()

    async def _adopted(self, deliveries: Sequence[Delivery]) -> None:
        """Wait until the leases of these deliveries are recorded (see `_blocking_read`)."""
        if not self._adopting:
            return
        for delivery in deliveries:
            done = self._adopting.get(_adopt_key(delivery))
            if done is not None:
                await done.wait()

    def _queue_error(self, key: str, status: str, reply: list[Any]) -> BackendError:
        if status == "undeclared":
            return BackendError(
                f"subscription {key!r} is not declared in the Redis backend at {self.where} "
                f"(prefix {self.prefix!r}); call `declare` first"
            )
        return BackendError(
            f"the consumer group of subscription {key!r} is missing in Redis at {self.where} "
            f"({reply[1:]}): Redis lost its data; run it with appendonly yes"
        )

    async def _start_watch(self, subscription: Subscription) -> Doorbell:
        link, _ = self._running()
        assert self._nursery is not None
        bell = self._bells.get(subscription.key)
        if bell is None:
            # A rate-limited receive takes tokens in the script that leases, never in a
            # blocking read (which would hand out messages without them).
            options = subscription.options
            blocking = options.strategy == "standard" and options.rate_limit is None
            bell = self._bells[subscription.key] = Doorbell(
                subscription.topic, blocking_read=blocking
            )
            self._receiving[subscription.key] = subscription
            stream = f"{self.prefix}:stream:{subscription.topic}"
            bell_key = f"{self.prefix}:bell:{subscription.key}"
            await self._nursery.start(watch, link, None if blocking else stream, bell_key, bell)
            if blocking:
                await self._nursery.start(knock, link, bell)
        return bell

    async def _check_declared(self, deliveries: Sequence[Delivery]) -> None:
        known = self._known
        unknown = {d.subscription for d in deliveries if d.subscription not in known}
        if not unknown:
            return
        link, _ = self._running()
        table = f"{self.prefix}:subtopic"
        for key in sorted(unknown):
            topic = await link.call(
                "look up a subscription", functools.partial(link.client.hget, table, key)
            )
            if topic is None:
                raise BackendError(
                    f"subscription {key!r} is not declared in the Redis backend at "
                    f"{self.where} (prefix {self.prefix!r}); call `declare` first"
                )
            self._known.add(key)

    def _items(self, deliveries: Sequence[Delivery]) -> list[str]:
        """(sub, n, ref, attempt, ...) groups, as the ACK and EXTEND scripts read them."""
        by_sub: dict[str, list[str]] = {}
        for delivery in deliveries:
            ref, attempt = codec.parse_receipt(delivery.receipt)
            pairs = by_sub.get(delivery.subscription)
            if pairs is None:
                pairs = by_sub[delivery.subscription] = []
            pairs += (ref, attempt)
        return codec.receipt_groups(by_sub)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._running()
        await self._check_declared(deliveries)
        await self._adopted(deliveries)
        if not deliveries:
            await trio.lowlevel.checkpoint()
            return
        for start in range(0, len(deliveries), _CHUNK):
            await self._acks.submit(self._items(deliveries[start : start + _CHUNK]))

    async def _flush_ack(self, items: list[str]) -> None:
        await self._script("acknowledge messages", lua.ACK, items)

    async def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        _, clock = self._running()
        await self._check_declared(deliveries)
        await self._adopted(deliveries)
        deadline = codec.millis(clock.now() + seconds)
        for start in range(0, len(deliveries), _CHUNK):
            items = self._items(deliveries[start : start + _CHUNK])
            await self._script("extend leases", lua.EXTEND, [deadline, *items])

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        self._running()
        await self._check_declared(deliveries)
        await self._adopted(deliveries)  # a lease not yet recorded would be missed
        for start in range(0, len(deliveries), _CHUNK):
            items = self._items(deliveries[start : start + _CHUNK])
            await self._script("release leases", lua.RELEASE, items)
        if not deliveries:
            await trio.lowlevel.checkpoint()
        for key in {d.subscription for d in deliveries}:
            bell = self._bells.get(key)
            if bell is not None:
                bell.ring()  # receivers here need not wait for the watcher

    async def retry(
        self, delivery: Delivery, *, delay: float, error: str, traceback: str | None = None
    ) -> None:
        _, clock = self._running()
        await self._check_declared([delivery])
        await self._adopted([delivery])
        ref, attempt = codec.parse_receipt(delivery.receipt)
        due = codec.millis(clock.now() + max(delay, 0.0))
        failure = codec.encode_json([error, traceback], where="a failure")
        args = [delivery.subscription, ref, attempt, due, failure]
        await self._script("schedule a retry", lua.RETRY, args)
        bell = self._bells.get(delivery.subscription)
        if bell is not None:
            bell.ring()  # an earlier due time for receivers sleeping here

    async def bury(
        self,
        delivery: Delivery,
        *,
        error: str,
        traceback: str | None = None,
        announce: Announce | None = None,
    ) -> DeadLetter:
        _, clock = self._running()
        await self._check_declared([delivery])
        await self._adopted([delivery])
        ref, attempt = codec.parse_receipt(delivery.receipt)
        now = clock.now()
        letter = DeadLetter(
            id=new_id(),
            subscription=delivery.subscription,
            envelope=delivery.envelope,
            error=error,
            attempts=delivery.attempt,
            failed_at=now,
            traceback=traceback,
        )
        args = [delivery.subscription, ref, attempt, letter.id, error, codec.epoch(now)]
        args += [traceback or "", str(delivery.attempt)]
        notice = announce(letter) if announce is not None else None
        if notice is not None:
            args += codec.publish_args(notice)  # refuses non-JSON before the call
        reply = await self._script("bury a message", lua.BURY, args)
        stored = reply[0] == 1
        body = reply[1] if stored and len(reply) > 1 else ""
        if stored:
            for key, bell in self._bells.items():
                # A fifo group may have a next message; the dead-letter topic a new one.
                if key == delivery.subscription or (
                    notice is not None and bell.topic == notice.topic and not bell.blocking_read
                ):
                    bell.ring()
        return attrs.evolve(
            letter,
            id=letter.id if stored else "",
            envelope=codec.decode_envelope(body) if body else delivery.envelope,
        )

    async def dead_letters(
        self, subscription: str | None = None, *, limit: int = 100
    ) -> list[DeadLetter]:
        link, _ = self._running()
        if limit <= 0:
            await trio.lowlevel.checkpoint()
            return []
        client = link.client
        if subscription is None:
            subs = sorted(
                await link.call(
                    "list dead letters", lambda: client.smembers(f"{self.prefix}:deadsubs")
                )
            )
        else:
            subs = [subscription]
        found: list[tuple[tuple[int, int], DeadLetter]] = []
        for sub in subs:
            key = f"{self.prefix}:dead:{sub}"
            entries = await link.call(
                "list dead letters",
                functools.partial(client.xrange, key, count=limit),
            )
            for entry in entries:
                ms, _, seq = str(entry.identifier).partition("-")
                fields = {str(k): str(v) for k, v in entry.field_values.items()}
                found.append(((int(ms), int(seq)), codec.decode_dead_letter(sub, fields)))
        found.sort(key=lambda pair: pair[0])
        return [letter for _, letter in found[:limit]]

    async def redrive(self, ids: Sequence[str]) -> int:
        self._running()
        if not ids:
            await trio.lowlevel.checkpoint()
            return 0
        count = int(
            await self._script("re-drive dead letters", lua_admin.REDRIVE, [new_id(), *ids])
        )
        for bell in self._bells.values():
            bell.ring()
        return count

    async def discard(self, ids: Sequence[str]) -> int:
        self._running()
        if not ids:
            await trio.lowlevel.checkpoint()
            return 0
        return int(await self._script("discard dead letters", lua_admin.DISCARD, [new_id(), *ids]))

    async def depth(self) -> dict[str, QueueDepth]:
        _, clock = self._running()
        counts = await self._script(
            "count delayed messages", lua_later.LATER_COUNTS, [codec.millis(clock.now())]
        )
        scheduled = {str(counts[i]): int(counts[i + 1]) for i in range(0, len(counts), 2)}
        reply = await self._script(
            "count queued messages", lua_admin.DEPTH, [codec.millis(clock.now())]
        )
        return {
            reply[i]: QueueDepth(
                ready=int(reply[i + 1]),
                leased=int(reply[i + 2]),
                delayed=int(reply[i + 3]),
                dead=int(reply[i + 4]),
                scheduled=scheduled.get(reply[i], 0),
            )
            for i in range(0, len(reply), 5)
        }

    async def _trim_forever(self) -> None:
        """Now and then, for the subscriptions this instance receives for: re-queue orphans
        (see ORPHANS), forget the consumer names of stopped instances, and delete stream
        entries every consumer group is done with."""
        while True:
            await trio.sleep(self.options.trim_interval)
            # Housekeeping: Redis away past the reconnect timeout skips a round instead of
            # stopping the backend (the callers meet the outage and say so themselves).
            with suppress(BackendUnavailable):
                await self._trim_once()

    async def _trim_once(self) -> None:
        forget_ms = codec.millis(self.options.forget_consumers_after)
        for key, bell in sorted(self._bells.items()):
            if bell.blocking_read:
                await self._sweep_orphans(self._receiving[key])
            args = [key, forget_ms, self.consumer]
            await self._script("forget stopped consumers", lua_admin.FORGET_CONSUMERS, args)
        for topic in sorted(self._topics):
            await self._script("trim a topic stream", lua_admin.TRIM, [topic])

    async def _sweep_orphans(self, subscription: Subscription) -> None:
        idle = codec.millis(subscription.options.lease)
        start = self._orphan_start.get(subscription.key, "-")
        args = [subscription.key, idle, start, 100, "", "1"]
        reply = await self._script("re-queue orphaned messages", lua.ORPHANS, args)
        self._orphan_start[subscription.key] = reply[0]
        if int(reply[1]):
            self._bells[subscription.key].ring()


def _leased(reply: list[Any], key: str, ttl: float | None) -> list[Delivery]:
    """The deliveries of a RECEIVE reply: (ref, attempt, envelope) triples from its 5th item,
    the attempt an integer reply. (The receipt is `codec.receipt`'s text, written inline: a
    call fewer per message.)"""
    decode = codec.decode_envelope
    deliveries = []
    for i in range(4, len(reply), 3):
        ref, attempt = reply[i], reply[i + 1]
        delivery = Delivery(decode(reply[i + 2]), key, attempt, f"{ref}/{attempt}")
        if ttl is not None or delivery.envelope.expires_at is not None:
            delivery = _expiring(delivery, ttl)
        deliveries.append(delivery)
    return deliveries


def _expiring(delivery: Delivery, ttl: float | None) -> Delivery:
    """The delivery with its expiry, when it is a first one and no re-driven copy ("r" ref)."""
    envelope = delivery.envelope
    if delivery.attempt != 1 or (ttl is None and envelope.expires_at is None):
        return delivery
    if delivery.receipt.startswith("r"):
        return delivery
    return attrs.evolve(delivery, expires_at=expiry_of(envelope, ttl))


def _adopt_key(delivery: Delivery) -> tuple[str, str]:
    """(sub, ref): how `_adopting` knows a delivery a blocking read handed out."""
    return delivery.subscription, codec.parse_receipt(delivery.receipt)[0]
