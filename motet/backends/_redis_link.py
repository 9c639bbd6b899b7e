"""The Redis backend's connection: lazy coredis import, riding out restarts, group commit,
and waking idle receivers when another instance publishes.

coredis is imported only here and only when a Redis backend runs, so `import motet` works
without it. Every call goes through `RedisLink.call`, which retries a call that failed
because Redis was unreachable (restarting, loading its AOF) with exponential backoff on
trio's clock, for up to `reconnect_timeout` seconds, then raises `BackendUnavailable`.
Retried calls must be safe to repeat: the scripts are written so (see `_redis_lua`).
"""

from __future__ import annotations

import copy
import functools
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from .._backoff import Backoff
from .._clock import Clock
from .._errors import BackendError, BackendUnavailable
from .._redact import redact
from .._validators import count, seconds
from ._redis_wire import Address, ReplyError, Wire, WireError, require_hiredis, sha1

if TYPE_CHECKING:
    import coredis

T = TypeVar("T")
Item = TypeVar("Item")

INSTALL_HINT = "pip install 'motet[redis]'"
# Error replies of a Redis that cannot take writes for now: its AOF or RDB write failed (a
# full disk: MISCONF), maxmemory reached (OOM), a replica (READONLY), a master without
# enough replicas (NOREPLICAS, MASTERDOWN). Calls failing so raise BackendUnavailable.
CANNOT_WRITE_NOW = ("MISCONF", "OOM", "READONLY", "NOREPLICAS", "MASTERDOWN")


def import_coredis() -> Any:
    try:
        import coredis
    except ImportError as exc:
        raise BackendUnavailable(
            f"the Redis backend needs the coredis package, which is not installed: {INSTALL_HINT}",
            cause=exc,
        ) from exc
    return coredis


# Between two tries of a call while Redis is unreachable: soon at first (a restart is often
# quick), then at most once a second until reconnect_timeout.
RECONNECT_BACKOFF = Backoff(initial=0.02, cap=1.0)

_seconds = seconds(allow_inf=True)
_count = count()


@attrs.frozen
class RedisOptions:
    """Tuning of the Redis backend; the defaults suit a LAN Redis."""

    # s, per connection attempt (start fails after this)
    connect_timeout: float = attrs.field(default=5.0, validator=_seconds)
    # s Redis may stay unreachable mid-run before calls fail; below the hour for which the
    # scripts remember a call's result, so a call retried after a lost reply never repeats
    # (a receive's leased refs are remembered for this + 60 s)
    reconnect_timeout: float = attrs.field(
        default=60.0, validator=[_seconds, attrs.validators.lt(3000.0)]
    )
    # s, server-side BLOCK of the wake-up read (real time)
    wake_block: float = attrs.field(default=1.0, validator=_seconds)
    # s, an idle receiver re-checks at least this often (runtime clock)
    poll: float = attrs.field(default=2.0, validator=_seconds)
    trim_interval: float = attrs.field(default=5.0, validator=_seconds)  # s between trims
    # s a consumer name with nothing pending may go unread before it is removed from its
    # group (stopped and restarted instances leave theirs behind); far above the 2 s poll
    forget_consumers_after: float = attrs.field(default=3600.0, validator=_seconds)
    tick_ttl: int = attrs.field(default=7 * 86400, validator=_count)  # s a tick mark lives
    # commands are multiplexed over these
    max_connections: int = attrs.field(default=64, validator=_count)
    # one per subscription whose receivers are idle
    max_blocking_connections: int = attrs.field(default=1024, validator=_count)
    # most script arguments per group-commit round trip
    batch: int = attrs.field(default=2000, validator=_count)


class RedisScripts:
    """What every part of the Redis backend reaches: the running link and clock, and the
    scripts called through the link's retry policy. `RedisBackend.run` sets the link."""

    url: str
    where: str  # `url` without its credentials, for messages
    prefix: str
    options: RedisOptions
    _link: RedisLink | None = None
    _clock: Clock | None = None

    def _running(self) -> tuple[RedisLink, Clock]:
        if self._link is None or self._clock is None:
            raise BackendError(
                f"the Redis backend for {self.where} is not running: start it with "
                "`await nursery.start(backend.run, clock)` before using it"
            )
        return self._link, self._clock

    async def _script(self, what: str, source: str, args: Sequence[Any]) -> Any:
        if self._link is None:
            # A task woken in the same moment as the stop that cancels it (a trim, a sweep):
            # it meets that cancellation, not "not running".
            await trio.lowlevel.checkpoint_if_cancelled()
        link, _ = self._running()
        script = link.script(source)
        return await link.call(what, functools.partial(script, keys=[], args=[self.prefix, *args]))


class RedisLink:
    """One coredis client plus the retry policy every backend call goes through."""

    def __init__(self, url: str, options: RedisOptions) -> None:
        self.url = url
        self.where = redact(url)  # the URL as messages show it: without its credentials
        self.options = options
        self.coredis = import_coredis()
        require_hiredis()
        exc = self.coredis.exceptions
        self.transient: tuple[type[BaseException], ...] = (
            WireError,
            exc.ConnectionError,
            exc.BusyLoadingError,
            TimeoutError,
            OSError,
        )
        self.client: coredis.Redis[str] = self._client(options.max_connections)
        # Wake-up reads block a connection each (one per subscription with idle receivers);
        # they get a pool of their own so they never starve the commands.
        self.blocking: coredis.Redis[str] = self._client(options.max_blocking_connections)
        self.scripts: dict[str, Any] = {}
        self.address = Address.parse(url)
        self._nursery: trio.Nursery | None = None
        self._wire: Wire | None = None
        self._spare_wires: list[Wire] = []  # for blocking reads, reused one at a time
        self._closed = False
        self._stopped = trio.Event()  # set when the backend stops: calls retrying give up
        self.failure: str | None = None  # why calls fail right now (Redis away), for health

    def start(self, nursery: trio.Nursery) -> None:
        """Open the hot-path wire; its reader tasks (and those of blocking wires) run in
        `nursery`, whose end closes them."""
        self._nursery = nursery
        self._wire = Wire(self.address, nursery, self.options.connect_timeout)

    @property
    def wire(self) -> Wire:
        if self._wire is None:
            raise BackendError(f"the connection to Redis at {self.where} is not open")
        return self._wire

    def take_wire(self) -> Wire:
        """A connection of its own for one blocking read; give it back with `give_wire`."""
        if self._spare_wires:
            return self._spare_wires.pop()
        assert self._nursery is not None
        return Wire(self.address, self._nursery, self.options.connect_timeout, pipelined=False)

    async def close_wires(self) -> None:
        """Close the spare blocking-read wires (the others close with their reader tasks or
        with the read that was cancelled)."""
        self._closed = True
        self._stopped.set()
        spare, self._spare_wires = self._spare_wires, []
        with trio.CancelScope(shield=True):
            for wire in spare:
                await wire.aclose()

    async def give_wire(self, wire: Wire) -> None:
        # Kept without a checkpoint: a blocking read gives its wire back on the way from
        # Redis's reply to the handler, where a scheduler round would add to the latency.
        if not self._closed and len(self._spare_wires) < self.options.max_blocking_connections:
            self._spare_wires.append(wire)
        else:
            await wire.aclose()

    def _client(self, max_connections: int) -> coredis.Redis[str]:
        client: coredis.Redis[str] = self.coredis.Redis.from_url(
            self.url,
            decode_responses=True,
            connect_timeout=self.options.connect_timeout,
            max_connections=max_connections,
            retry_policy=self.coredis.retry.NoRetryPolicy(),
        )
        return client

    def script(self, source: str) -> Any:
        """`await script(keys=[...], args=[...])` runs `source` over the hot-path wire."""
        found = self.scripts.get(source)
        if found is None:
            # (A partial, not a closure: no Python frame of its own on every call.)
            found = self.scripts[source] = functools.partial(self.wire.script, source, sha1(source))
        return found

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`, retried with backoff while Redis is unreachable (at most reconnect_timeout).

        A call made in the caller's task (a lone group commit) may be in flight when the
        backend stops: its connection closes under it and it raises `BackendError`, as the
        callers waiting for a group commit do, instead of retrying."""
        tries = 0
        since: float | None = None
        while True:
            try:
                result = await fn()
            except self.transient as exc:
                if self._closed:
                    raise stopped_error(what) from exc
                now = trio.current_time()
                since = now if since is None else since
                self.failure = redact(f"Redis at {self.where} is unreachable: {exc}")
                if now - since >= self.options.reconnect_timeout:
                    raise BackendUnavailable(
                        f"Redis at {self.where} has been unreachable for "
                        f"{now - since:.0f} s while trying to {what} ({exc}); check that "
                        "redis-server is running and reachable",
                        cause=exc,
                    ) from exc
            except (self.coredis.exceptions.RedisError, ReplyError) as exc:
                if str(exc).startswith(CANNOT_WRITE_NOW):
                    # Redis answers but cannot take writes (its disk is full, maxmemory):
                    # a condition of the backend, which callers wait out (not a bug).
                    self.failure = redact(f"Redis at {self.where} refused to {what}: {exc}")
                    raise BackendUnavailable(self.failure, cause=exc) from exc
                raise BackendError(f"Redis at {self.where} refused to {what}: {exc}") from exc
            except UnicodeEncodeError as exc:  # nothing was sent (see Wire._send)
                raise BackendError(
                    f"cannot {what} in Redis: a name or text in the call is not valid Unicode "
                    f"(it holds a lone surrogate: {exc.object[exc.start : exc.end]!r})"
                ) from None
            else:
                if self.failure is not None:
                    self.failure = None
                return result
            tries += 1
            with trio.move_on_after(RECONNECT_BACKOFF.delay(tries)):
                await self._stopped.wait()
            if self._closed:
                raise stopped_error(what)

    async def open(self) -> None:
        """Check that Redis answers, within connect_timeout; BackendUnavailable otherwise."""
        failure: BaseException | None = None
        with trio.move_on_after(self.options.connect_timeout * 2) as scope:
            try:
                await self.client.ping()
                return
            except Exception as exc:
                failure = exc
        reason = (
            "no answer"
            if scope.cancelled_caught
            else redact(f"{type(failure).__name__}: {failure}")
        )
        cause = failure.__cause__ if failure is not None and failure.__cause__ else failure
        raise BackendUnavailable(
            f"cannot reach Redis at {self.where} ({reason}"
            + (f"; {redact(str(cause))}" if cause is not None and cause is not failure else "")
            + "): start redis-server there (with appendonly yes, appendfsync always) "
            "or pass the right URL, e.g. --backend redis://127.0.0.1:6379/0",
            cause=failure,
        )


def stopped_error(what: str) -> BackendError:
    return BackendError(
        f"cannot {what}: the Redis backend stopped before it was done "
        "(it may or may not have reached Redis)"
    )


def _own(shared: BaseException) -> BaseException:
    """One caller's own copy of the failure of the flush it waited for, which every caller of
    that batch gets. Raising one exception object in several tasks would add each raiser's
    frames to the traceback the others see (the last caller's would show every earlier
    caller's) and tie their frames into one reference cycle. The copy carries the flush's
    traceback and cause, to which the caller's raise adds its own frames."""
    try:
        own = copy.copy(shared)
    except Exception:  # an exception type that cannot be rebuilt from its arguments
        own = BackendError(f"a batched call failed: {shared!r}")
        own.__cause__ = shared
        return own
    if hasattr(shared, "__notes__"):
        own.__notes__ = list(shared.__notes__)
    own.__cause__, own.__context__ = shared.__cause__, shared.__context__
    own.__suppress_context__ = shared.__suppress_context__
    return own.with_traceback(shared.__traceback__)


class _Ticket:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None
        self.result: Any = None


class GroupCommit(Generic[Item]):
    """Concurrent callers' items reach Redis together: one round trip per flush, not per call.

    A caller returns once the flush holding its items is done (so an ack or a publish is
    durable when it returns). A caller that finds no flush in flight and nobody waiting
    flushes its own items at once, in its own task (one call at a time costs no hop through
    the `run` task); while a flush is in flight the next one, made by `run`, gathers
    everything submitted meanwhile, so batches grow with load and cost no waiting when idle.
    When `run` ends, waiting callers (and later ones) get `BackendError` instead of waiting
    forever; a caller flushing its own items gets it from `RedisLink.call`, whose
    connection closes with the backend. A flush that returns a list returns one result per
    submission, in order: `submit` returns its caller's.
    """

    def __init__(
        self,
        what: str,
        flush: Callable[[list[Item]], Awaitable[list[Any] | None]],
        max_items: int,
    ) -> None:
        self._what = what
        self._flush = flush
        self._max_items = max_items
        self._pending: deque[tuple[Sequence[Item], _Ticket]] = deque()
        self._wake = trio.Event()
        self._running = False
        self._in_flight = 0  # flushes under way (by `run` and by a caller alone)

    async def submit(self, items: Sequence[Item]) -> Any:
        # A caller cancelled together with the backend (a hard stop) may get here after the
        # backend ended: it meets its cancellation, not "not running".
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._running:
            raise BackendError(f"cannot {self._what}: the Redis backend is not running")
        if not self._in_flight and not self._pending:
            # Alone: flushed here, in the caller's task (inline: it runs once per call).
            self._in_flight += 1
            try:
                results = await self._flush(list(items))
            finally:
                self._in_flight -= 1
                if self._pending:
                    self._wake.set()  # gathered while this flush was in flight
            return None if results is None else results[0]
        ticket = _Ticket()
        self._pending.append((items, ticket))
        self._wake.set()
        await ticket.done.wait()
        if ticket.error is not None:
            raise _own(ticket.error)
        return ticket.result

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        taken: list[tuple[Sequence[Item], _Ticket]] = []
        try:
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                while self._pending:
                    items: list[Item] = []
                    while self._pending and (not items or len(items) < self._max_items):
                        entry = self._pending.popleft()
                        taken.append(entry)
                        items.extend(entry[0])
                    error: BaseException | None = None
                    results: list[Any] | None = None
                    self._in_flight += 1
                    try:
                        results = await self._flush(items)
                    except Exception as exc:  # handed to every caller of this batch
                        error = exc
                    finally:
                        self._in_flight -= 1
                    for n, (_, ticket) in enumerate(taken):
                        ticket.error = error
                        ticket.result = None if results is None else results[n]
                        ticket.done.set()
                    taken = []
        finally:
            self._running = False
            for _, ticket in [*taken, *self._pending]:
                ticket.error = stopped_error(self._what)
                ticket.done.set()
            self._pending.clear()


class Doorbell:
    """Wakes the receivers of one subscription waiting in this process.

    `ring()` wakes everyone waiting on an earlier `event()`; a receiver takes the event
    before looking at Redis, so a ring between its look and its wait is never missed.
    """

    def __init__(self, topic: str, *, blocking_read: bool = False) -> None:
        self.topic = topic
        # Receivers wait in a blocking XREADGROUP on the topic's stream, which a publish
        # ends by itself: the watcher and a local publish need not ring for new messages.
        self.blocking_read = blocking_read
        # wires in a blocking read -> the trio time `knock` ends it (inf: knocked already)
        self.blocked: dict[Wire, float] = {}
        self.reading = trio.Lock()  # held by a blocking read until its ADOPT is under way
        self.rings = 0
        self.attention = trio.Event()  # set on a ring or a new blocked read: `knock` looks
        self._event = trio.Event()
        self.ids: tuple[str, str] | None = None  # (stream, bell) ids the receivers saw last
        self.wanted = trio.Event()  # set when a receiver is idle: the watcher should block

    def event(self) -> trio.Event:
        return self._event

    def ring(self) -> None:
        self._event.set()
        self._event = trio.Event()
        self.rings += 1
        self.attention.set()

    def blocking(self, wire: Wire, deadline: float) -> None:
        self.blocked[wire] = deadline
        self.attention.set()

    def idle(self, stream_last: str, bell_last: str) -> None:
        self.ids = (stream_last, bell_last)
        self.wanted.set()


async def watch(
    link: RedisLink,
    stream: str | None,
    bell_key: str,
    bell: Doorbell,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Block in Redis (XREAD, which changes nothing) for news past the ids an idle receiver
    saw, and ring. Cancelling the read drops its connection (coredis does that for blocking
    commands), which is harmless because XREAD has no effect. Without `stream` only the
    subscription's bell is watched."""
    task_status.started()
    block_ms = max(1, math.ceil(link.options.wake_block * 1000))
    tries = 0
    while True:
        await bell.wanted.wait()
        bell.wanted = trio.Event()
        assert bell.ids is not None
        stream_last, bell_last = bell.ids
        keys = {bell_key: bell_last}
        if stream is not None:
            keys[stream] = stream_last
        try:
            news = await link.blocking.xread(keys, count=1, block=block_ms)
        except link.transient:
            bell.ring()  # let the receivers meet the outage (and its retry policy) themselves
            tries += 1
            await trio.sleep(RECONNECT_BACKOFF.delay(tries))
            continue
        tries = 0
        if news:
            bell.ring()
        elif not bell.wanted.is_set() and bell.ids == (stream_last, bell_last):
            bell.wanted.set()  # nothing new and the receivers still wait: block again


async def knock(
    link: RedisLink,
    bell: Doorbell,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """End the blocking reads of one subscription's receivers here early, with CLIENT
    UNBLOCK: all of them when the bell rings (a retry, a re-drive), each at its deadline (a
    lease or retry falling due). An unblocked read returns nothing and its receiver looks
    at Redis again."""
    task_status.started()
    seen = bell.rings
    while True:
        bell.attention = trio.Event()
        now = trio.current_time()
        rung, seen = bell.rings != seen, bell.rings
        for wire, deadline in list(bell.blocked.items()):
            if rung or deadline <= now:
                bell.blocked[wire] = math.inf
                await _unblock(link, bell, wire)
        with trio.move_on_at(min(bell.blocked.values(), default=math.inf)):
            await bell.attention.wait()


async def _unblock(link: RedisLink, bell: Doorbell, wire: Wire) -> None:
    # The read's bytes may not have reached Redis yet (CLIENT UNBLOCK then finds nothing to
    # unblock): knock again until it ends or surely got there.
    for _ in range(20):
        client_id = wire.client_id
        if wire not in bell.blocked or client_id is None:
            return
        try:
            if await link.wire.call("CLIENT", "UNBLOCK", client_id):
                return
        except (WireError, ReplyError):
            return  # the read meets the outage too
