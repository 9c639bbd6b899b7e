"""The durable default backend: queues, leases, retries, dead letters, state and cron marks
in one SQLite file (WAL mode), shared safely by several processes on one host.

Durability. Every write goes through one writer connection that commits in groups (see
`_sqlite_writer`): a call returns only once the transaction holding its data has committed.
What "committed" survives depends on `synchronous` (SQLite's PRAGMA, in WAL mode):

- ``NORMAL``: the commit is in the WAL file when the call returns, but the WAL is fsynced
  only at checkpoints. Survives the process dying (kill -9, a crash, an OOM kill): the OS
  still holds the data. An OS crash or power loss may lose the last transactions (never
  corrupt the file).
- ``FULL`` (default): also survives an OS crash or power loss, as far as the disk honours
  fsync. Whatever creates or changes work (publish, retry, bury, redrive, discard, state
  writes and their events, cron marks, declare) is fsynced before the call returns. Leases,
  lease extensions and acks are committed without an fsync of their own and become durable
  with the next synced commit: the WAL is one append-only file, so that fsync covers them.
  A power cut can therefore undo a recent ack or lease, which means one more delivery of
  that message (at least once), never a lost one.
- ``EXTRA``: FULL plus an fsync of the folder when the WAL is reset; for filesystems where a
  file's directory entry needs its own fsync.

Copying the WAL back into the file (a checkpoint) happens beside the writer, on a connection
of its own (`_sqlite_checkpoint`), so no commit waits for it.

FULL is the default because motet's promise is "an emit returns once the message is durable"
and a 2xx from an HTTP step is a promise to the caller that outlives this machine's power;
group commit makes that affordable (one fsync carries every message of a batch; see
bench/bench_sqlite.py). Choose NORMAL when losing the last transactions on a power cut is
acceptable and fsyncs are slow (network or cloud disks).

Time. Lease ends and retry times are epoch seconds from the injected clock, never
time.time(), so MockClock drives them and processes on one host agree.

Other processes. Subscriptions live in the file, so a publish in one process fans out to the
subscriptions every process declared. Leasing is an UPDATE inside the writer's
`BEGIN IMMEDIATE` transaction, so one message is leased to one process at a time. A waiting
`receive` wakes at once on this process's commits, and on another process's as soon as its
doorbell datagram arrives (`_sqlite_doorbell`); polling `PRAGMA data_version` (cheap, no
transaction) every `doorbell_poll` seconds is the fallback that catches a missed one, or
every `poll_interval` seconds where no doorbell can be bound.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from .._clock import Clock
from .._envelope import (
    DEFAULT_DEDUP_WINDOW,
    JSON,
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    Subscription,
)
from .._errors import BackendError, BackendUnavailable
from .._malloc import release_free_memory
from .._state_writes import StateWrite
from .._status import CancelOutcome, MessageStatus, Settlement
from . import _sqlite_later as later
from . import _sqlite_queue as q
from . import _sqlite_rate as qr
from . import _sqlite_state as st
from . import _sqlite_status as ss
from ._protocol import Announce, Backend, Leased, StateChange
from ._sqlite_checkpoint import BACKSTOP_PAGES, Checkpointer
from ._sqlite_doorbell import Doorbell
from ._sqlite_options import SqliteOptions
from ._sqlite_schema import Synchronous, connect, open_reader, open_writer
from ._sqlite_streams import SqliteStreams
from ._sqlite_writer import CommitStatistics, Reader, SqliteWriter, Tx

DEFAULT_PATH = Path(".motet") / "motet.db"

T = TypeVar("T")
_PURGE_EVERY = 60.0  # s between deletions of expired settled records


class SqliteBackend(SqliteStreams):
    """Backend on one SQLite file. Start with `await nursery.start(backend.run, clock)`.
    `options` tunes durability, lock waits, polling, batching and size (`SqliteOptions`)."""

    name = "sqlite"

    def __init__(
        self, path: Path | str = DEFAULT_PATH, options: SqliteOptions | None = None
    ) -> None:
        options = options if options is not None else SqliteOptions()
        self.path = Path(path)
        self.options = options
        self.synchronous: Synchronous = options.level
        self._busy_timeout = float(options.busy_timeout)
        self._poll_interval = options.poll_interval
        self._max_batch = options.max_batch
        self._max_bytes = options.max_bytes
        self._clock: Clock | None = None
        self._writer: SqliteWriter | None = None
        self._reader: Reader | None = None
        self._checkpointer: Checkpointer | None = None
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._waiting: dict[str, trio.Event] = {}  # subscription key -> idle receivers' wakeup
        # Bumped by every commit that may make a subscription's messages ready (`external`:
        # any subscription's), so a receiver can tell whether it missed one while leasing.
        self._changes: dict[str, int] = {}
        self._external_changes = 0
        self._last_purge = -math.inf
        self.doorbell: Doorbell | None = None  # while running with a bound doorbell

    @property
    def write_failure(self) -> str | None:
        """Why writes fail right now (a full disk, an I/O error), or None when they work."""
        return None if self._writer is None else self._writer.failure

    def __repr__(self) -> str:
        return f"SqliteBackend({str(self.path)!r}, synchronous={self.synchronous!r})"

    async def run(
        self, clock: Clock, *, task_status: trio.TaskStatus[Backend] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._started:
            raise BackendError(
                f"sqlite backend for {self.path} is already running; create one SqliteBackend "
                "per runtime (several may share the file)"
            )
        self._started = True
        try:
            await self._serve(clock, task_status)
        finally:
            self._started = False

    async def _serve(self, clock: Clock, task_status: trio.TaskStatus[Backend]) -> None:
        writer_conn = await trio.to_thread.run_sync(self._open_writer)
        reader: Reader | None = None
        checkpointer: Checkpointer | None = None
        try:
            reader_conn = await trio.to_thread.run_sync(
                lambda: open_reader(self.path, busy_timeout=self._busy_timeout)
            )
            reader = Reader(reader_conn, self.path)
            checkpointer = Checkpointer(self._open_checkpointer)
            writer = SqliteWriter(
                writer_conn, self.path, max_batch=self._max_batch, synchronous=self.synchronous
            )
            writer.after_release = release_free_memory
            async with trio.open_nursery() as nursery:
                self._clock = clock
                self._writer = writer
                self._reader = reader
                self._nursery = nursery
                self._checkpointer = checkpointer
                nursery.start_soon(checkpointer.run)
                nursery.start_soon(writer.serve, clock, self._on_commit)
                nursery.start_soon(writer.release_when_quiet)
                interval = self._poll_interval
                if interval is not None and self.options.doorbell_poll is not None:
                    doorbell = Doorbell(self.path)
                    if doorbell.bind():
                        self.doorbell = doorbell
                        writer.after_commit = doorbell.ring
                        interval = max(interval, self.options.doorbell_poll)
                        nursery.start_soon(doorbell.run, self._on_ring)
                if interval is not None:
                    nursery.start_soon(self._watch, writer, interval)
                task_status.started(self)
        finally:
            if self.doorbell is not None:
                self.doorbell.close()
                self.doorbell = None
            self._writer = None
            self._reader = None
            self._nursery = None
            self._checkpointer = None
            for event in self._waiting.values():
                event.set()  # receivers find the backend stopped instead of waiting forever
            self._waiting.clear()
            with trio.CancelScope(shield=True):
                # The writer has no batch in flight once its task ended; the reader is
                # closed under its limiter so no query is running on it.
                await trio.to_thread.run_sync(_close, writer_conn)
                if checkpointer is not None:
                    # Its task ended, so no checkpoint is running on it.
                    await trio.to_thread.run_sync(checkpointer.close)
                if reader is not None:
                    await reader.aclose()

    def _open_writer(self) -> sqlite3.Connection:
        conn = open_writer(
            self.path,
            synchronous=self.synchronous,
            busy_timeout=self._busy_timeout,
            max_bytes=self._max_bytes,
        )
        # Checkpoints run in the background (`_sqlite_checkpoint`); the writer's own is a
        # backstop only.
        conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        return conn

    def _open_checkpointer(self) -> sqlite3.Connection:
        conn = connect(self.path, busy_timeout=self._busy_timeout)
        try:
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")  # how a checkpoint fsyncs
        except BaseException:
            conn.close()
            raise
        return conn

    def statistics(self) -> CommitStatistics:
        """Commits, the calls they carried and the checkpoints run beside them, since `run`
        started (zeros when stopped)."""
        if self._writer is None or self._checkpointer is None:
            return CommitStatistics(0, 0)
        checkpoints = self._checkpointer.checkpoints
        return attrs.evolve(self._writer.statistics(), checkpoints=checkpoints)

    # -- plumbing ------------------------------------------------------------------------

    def _running(self) -> tuple[SqliteWriter, Reader, Clock]:
        if self._writer is None or self._reader is None or self._clock is None:
            raise BackendError(
                f"sqlite backend for {self.path} is not running: start it with "
                "`await nursery.start(backend.run, clock)` before using it"
            )
        return self._writer, self._reader, self._clock

    async def _write(self, fn: Callable[[Tx], T]) -> T:
        return await self._running()[0].call(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._running()[1].query(fn)

    def _on_commit(self, touched: set[str], external: bool) -> None:
        if self._checkpointer is not None and self._writer is not None:
            self._checkpointer.committed(self._writer.changes)
        for key in touched:
            self._changes[key] = self._changes.get(key, 0) + 1
        if external:
            self._external_changes += 1
        keys = list(self._waiting) if external else [k for k in touched if k in self._waiting]
        for key in keys:
            self._waiting.pop(key).set()

    def _on_ring(self, touched: set[str] | None) -> None:
        """Another process committed work for `touched` (None: any subscription)."""
        if touched is None:
            self._external_changes += 1
            keys = list(self._waiting)
        else:
            for key in touched:
                self._changes[key] = self._changes.get(key, 0) + 1
            keys = [k for k in touched if k in self._waiting]
        for key in keys:
            self._waiting.pop(key).set()

    async def _watch(self, writer: SqliteWriter, interval: float) -> None:
        """While someone waits in `receive`, look for other processes' commits."""
        while True:
            await trio.sleep(interval)
            if self._waiting:
                await writer.probe()

    # -- queues --------------------------------------------------------------------------

    async def declare(self, subscriptions: Sequence[Subscription]) -> None:
        subs = list(subscriptions)
        await self._write(lambda tx: q.declare(tx, subs))

    async def publish(
        self, envelopes: Sequence[Envelope], *, dedup_window: float = DEFAULT_DEDUP_WINDOW
    ) -> list[str]:
        self._running()
        items = [q.encode(envelope) for envelope in envelopes]
        if not items:
            await trio.lowlevel.checkpoint()
            return []
        if any(e.key is not None or e.not_before is not None for e in envelopes):
            sent = list(envelopes)
            return await self._write(lambda tx: later.publish(tx, sent, items, dedup_window))
        await self._write(lambda tx: q.publish(tx, items))
        return [e.id for e in envelopes]

    async def receive(self, subscription: Subscription, max_count: int) -> list[Delivery]:
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        key = subscription.key
        seconds = subscription.options.lease
        ttl = subscription.options.ttl
        while True:
            writer, _, clock = self._running()
            seen = (self._changes.get(key, 0), self._external_changes)
            deliveries, due = await writer.call(
                lambda tx: later.lease(tx, key, max_count, seconds, ttl),
                on_abandon=self._give_back,
                must_sync=False,
            )
            if deliveries:
                return deliveries
            if seen != (self._changes.get(key, 0), self._external_changes):
                continue  # something was committed after our lease query was queued
            woken = self._waiting.setdefault(key, trio.Event())
            with trio.move_on_at(math.inf if due is None else clock.to_trio(due)):
                await woken.wait()

    async def receive_limited(self, subscription: Subscription, max_count: int) -> Leased:
        limit = subscription.options.rate_limit
        if limit is None:
            return Leased(await self.receive(subscription, max_count))
        if max_count < 1:
            raise ValueError(f"receive max_count must be at least 1, got {max_count!r}")
        key = subscription.key
        seconds = subscription.options.lease
        while True:
            writer, _, clock = self._running()
            seen = (self._changes.get(key, 0), self._external_changes)
            deliveries, due, wait, waiting = await writer.call(
                lambda tx: qr.lease_limited(
                    tx, key, max_count, seconds, limit, subscription.options.ttl
                ),
                on_abandon=lambda got: self._give_back((got[0], None)),
                must_sync=False,
            )
            if deliveries or wait:
                return Leased(deliveries, wait, waiting)
            if seen != (self._changes.get(key, 0), self._external_changes):
                continue
            woken = self._waiting.setdefault(key, trio.Event())
            with trio.move_on_at(math.inf if due is None else clock.to_trio(due)):
                await woken.wait()

    def _give_back(self, leased: tuple[list[Delivery], Any]) -> None:
        """A receiver was cancelled after its lease committed: release the messages now
        rather than make them wait out the lease."""
        deliveries = leased[0]
        if deliveries and self._nursery is not None and self._writer is not None:
            receipts = [q.parse_receipt(d) for d in deliveries]
            writer = self._writer
            self._nursery.start_soon(self._release, writer, receipts)

    @staticmethod
    async def _release(writer: SqliteWriter, receipts: list[tuple[int, int]]) -> None:
        # A background task: a write that fails (a full disk) must not stop the backend;
        # the messages then come back when their lease expires.
        with contextlib.suppress(BackendUnavailable):
            await writer.call(lambda tx: q.release(tx, receipts), must_sync=False)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._running()
        plain = [q.parse_receipt(d) for d in deliveries if d.envelope.group is None]
        grouped = [q.parse_receipt(d) for d in deliveries if d.envelope.group is not None]
        # An ack lost to a power cut means one more delivery, never a lost message.
        await self._running()[0].call(lambda tx: q.ack(tx, plain, grouped), must_sync=False)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        writer = self._running()[0]
        receipts = [q.parse_receipt(d) for d in deliveries]
        await self._release(writer, receipts)

    async def extend(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._running()
        receipts = [q.parse_receipt(d) for d in deliveries]
        await self._running()[0].call(lambda tx: q.extend(tx, receipts, seconds), must_sync=False)

    async def retry(
        self, delivery: Delivery, *, delay: float, error: str, traceback: str | None = None
    ) -> None:
        self._running()
        receipt = q.parse_receipt(delivery)
        key = delivery.subscription
        await self._write(lambda tx: q.retry(tx, key, receipt, delay, error, traceback))

    async def bury(
        self,
        delivery: Delivery,
        *,
        error: str,
        traceback: str | None = None,
        announce: Announce | None = None,
    ) -> DeadLetter:
        _, _, clock = self._running()
        receipt = q.parse_receipt(delivery)
        letter = await self._write(
            lambda tx: q.bury(tx, delivery, receipt, error, traceback, announce)
        )
        if letter is None:
            # The lease was lost: nothing is stored, as the memory backend does.
            return DeadLetter(
                "",
                delivery.subscription,
                delivery.envelope,
                error,
                delivery.attempt,
                clock.now(),
                traceback,
            )
        return letter

    async def dead_letters(
        self, subscription: str | None = None, *, limit: int = 100
    ) -> list[DeadLetter]:
        count = max(limit, 0)
        return await self._read(lambda conn: q.dead_letters(conn, subscription, count))

    async def redrive(self, ids: Sequence[str]) -> int:
        wanted = list(ids)
        return await self._write(lambda tx: q.redrive(tx, wanted))

    async def discard(self, ids: Sequence[str]) -> int:
        wanted = list(ids)
        return await self._write(lambda tx: q.discard(tx, wanted))

    async def depth(self) -> dict[str, QueueDepth]:
        now = self._running()[2].now()
        return await self._read(lambda conn: later.depth(conn, now))

    # -- status by message id (see _sqlite_status) ----------------------------------------

    async def finish(
        self, deliveries: Sequence[Delivery], settlements: Sequence[Settlement]
    ) -> None:
        self._running()
        items = [
            (q.parse_receipt(d), d.envelope.group is not None, d.envelope.created_at, s)
            for d, s in zip(deliveries, settlements, strict=True)
        ]
        purge = self._purge_due()
        # Like an ack, losing it on a power cut means one more delivery, never a lost one.
        await self._running()[0].call(lambda tx: ss.finish(tx, items, purge=purge), must_sync=False)

    def _purge_due(self) -> bool:
        """Whether this write should also delete expired settled records (once a minute)."""
        now = self._running()[2].now()
        if now - self._last_purge < _PURGE_EVERY:
            return False
        self._last_purge = now
        return True

    async def message_status(self, message_id: str) -> MessageStatus | None:
        now = self._running()[2].now()
        return await self._read(lambda conn: ss.status(conn, message_id, now))

    async def cancel(self, message_id: str, *, keep_until: float) -> CancelOutcome:
        return await self._write(lambda tx: ss.cancel(tx, message_id, keep_until))

    async def cancel_requested(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        wanted = list(deliveries)
        return await self._read(lambda conn: ss.cancel_requested(conn, wanted))

    # -- state ---------------------------------------------------------------------------

    async def state_get(self, namespace: str, key: str) -> JSON:
        return await self._read(lambda conn: st.state_get(conn, namespace, key))

    async def state_write(
        self, namespace: str, key: str, write: StateWrite, *, trace_id: str
    ) -> StateChange:
        # A write that does not fit the document raises ValueError: a savepoint undoes it
        # alone, the rest of its group commit goes ahead.
        return await self._running()[0].call(
            lambda tx: st.state_write(tx, namespace, key, write, trace_id), savepoint=True
        )

    async def state_list(self, namespace: str) -> list[tuple[str, JSON]]:
        return await self._read(lambda conn: st.state_list(conn, namespace))

    async def state_groups(self) -> list[str]:
        return await self._read(st.state_groups)

    async def state_clear(self, namespace: str, *, trace_id: str) -> int:
        return await self._write(lambda tx: st.state_clear(tx, namespace, trace_id))

    # -- schedule ------------------------------------------------------------------------

    async def claim_tick(self, step: str, scheduled: float, tick: Envelope | None = None) -> bool:
        self._running()
        items = [] if tick is None else [q.encode(tick)]  # a non-JSON payload fails here

        def claim(tx: Tx) -> bool:
            won = st.claim_tick(tx, step, scheduled)
            if won and items:
                q.publish(tx, items)
            return won

        return await self._write(claim)

    async def last_tick(self, step: str) -> float | None:
        return await self._read(lambda conn: st.last_tick(conn, step))


def _close(conn: sqlite3.Connection) -> None:
    # Closing never loses committed data; the next open recovers the WAL.
    with contextlib.suppress(sqlite3.Error):
        conn.close()
