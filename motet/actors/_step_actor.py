"""The step actor: consumes one subscription (a queue, cron or state trigger of one step).

    backend.receive ──> fetcher ──> mailbox ──> up to `concurrency` workers ──> handler
                          ▲                          │
                          └── acker <── acks ────────┘   (retry / dead letter on failure)

The fetcher leases only as many messages as there are free handler slots, so an instance
never sits on work another instance could do. Workers are started on demand: one when a
delivery is handed out and no worker is idle, up to `concurrency`; an idle one stays. A
step that runs one message at a time and leases nothing ahead (cron, fifo and priority
queues at concurrency 1) has no fetcher: its one worker leases for itself when it is free,
a scheduler round per message instead of three. A graceful stop cancels that worker's lease
call (the receive), never its running handler. Acks are batched by one acker task (one
backend call for many messages); a lone one (nothing else held, the acker idle) is written
by its worker right after the handler, a scheduler round sooner. A lease keeper extends
the leases of everything held, so a long handler is never handed to a second worker while
alive.

State that must outlive a crash of the actor (the mailbox and what it holds) lives on this
object; the supervisor restarts `run`, which picks up where the crashed one stopped. A
delivery whose worker died with the actor is redelivered by the backend after its lease.

A backend that cannot take writes for a while (`BackendUnavailable`: a full disk, an I/O
error, Redis away past its reconnect timeout) is a condition of the backend, not a crash of
the actor: the fetcher, the acker and the lease keeper each wait and try again with
exponential backoff (`Outage`), saying why in the log, and carry on when writes work again.
Acks that failed are kept and sent again; a delivery whose outcome could not be recorded
(its retry or dead letter) comes back after its lease.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from .._context import Context, MessageInfo
from .._envelope import DeadLetter, Delivery, Envelope, Subscription, expired_error
from .._errors import (
    BackendError,
    BackendUnavailable,
    HandlerError,
    InputValidationError,
    NonRetryable,
    describe,
    find_error,
)
from .._logging import Logger
from .._status import Records, Settlement, encode_result
from .._traceback import format_failure
from ..backends._protocol import StepBackend
from ..steps._model import StateTrigger, Step, Trigger
from ._dead_letters import announcement, storable
from ._dispatcher import Dispatcher
from ._mailbox import Mailbox, open_mailbox
from ._outage import Outage
from ._publisher import Publisher
from ._rate_gate import RateGate
from ._retry import RetryPolicy
from ._state_events import state_filter
from ._suspension import on_first_suspension

Validate = Callable[[Any], Any]  # payload -> structured input; raises InputValidationError
FailureHook = Callable[[HandlerError], None]
ACK_FLUSH_DEADLINE = 5.0  # s: last chance to ack finished handlers when the actor stops
# s: an actor leases ahead (prefetch) only while its handlers' recent mean duration is below
# this. Then a backend round trip per batch is a real share of the time, and a few deliveries
# held ahead for milliseconds delay no other instance. Slower handlers lease only what they
# can run, so an idle instance is never left waiting behind a busy one's backlog.
FAST_HANDLER = 0.05
_MEAN_WEIGHT = 0.2  # of the latest duration in the running mean
_SCHEDULE_EVERY = 16  # deliveries a worker takes from a non-empty mailbox per schedule point


@attrs.frozen
class StepWiring:
    """What one step actor runs and what it is connected to.

    It runs `step` for `trigger`'s `subscription`: leases from and settles with `backend`,
    publishes through `publisher`, runs handlers on `dispatcher`, retries by `policy`.
    `validate` turns a payload into the handler's input; `on_failure` hears every handler
    failure, `on_settled` every delivery acked, retried or dead-lettered.
    """

    step: Step
    trigger: Trigger
    subscription: Subscription
    backend: StepBackend
    dispatcher: Dispatcher
    publisher: Publisher
    policy: RetryPolicy
    validate: Validate | None = None
    on_failure: FailureHook | None = None
    on_settled: Callable[[], None] | None = None
    records: Records | None = None  # settled records and results kept (None: none)


class StepActor:
    def __init__(self, wiring: StepWiring) -> None:
        self.step = wiring.step
        self.trigger = trigger = wiring.trigger
        self.subscription = subscription = wiring.subscription
        self.options = subscription.options
        self._backend = wiring.backend
        self._dispatcher = wiring.dispatcher
        self._publisher = wiring.publisher
        self._policy = wiring.policy
        self._max_attempts = wiring.policy.max_attempts  # read once per delivery
        self._validate = wiring.validate
        self._on_failure = wiring.on_failure
        self._on_settled = wiring.on_settled
        self._records = wiring.records if wiring.records and wiring.records.retention else None
        # receipt -> (started, result JSON, note) of a handler call, for its ack's record
        self._settlements: dict[str, tuple[float, str | None, str | None]] = {}
        # message id -> the cancel scope of the worker running its handler (`cancel_running`)
        self.running: dict[str, trio.CancelScope] = {}
        # message ids cancelled while leased here but not started (buffered): never run
        self._skip: set[str] = set()
        self._accept = state_filter(trigger) if isinstance(trigger, StateTrigger) else None
        self._condition = getattr(trigger, "condition", None) is not None
        self._mean_handler: float | None = None  # s, running mean of handler durations
        # Leases through the backend's token bucket when the subscription has a rate limit.
        self.gate = RateGate(self._backend, subscription) if self.options.rate_limit else None
        capacity = self.options.concurrency + self.options.lease_ahead
        self.mailbox: Mailbox[Delivery] = open_mailbox(capacity, name=subscription.key)
        self.held: dict[str, Delivery] = {}  # receipt -> delivery, buffered or being handled
        self._slot_freed = trio.Event()
        self._picked = trio.Event()  # a worker took a delivery from the mailbox
        self._pick_awaited = False  # the fetcher waits for `_picked` (set only then)
        # Workers parked in the mailbox's receive (idle). Counted down by the fetcher as it
        # hands one a delivery (each put goes to a parked worker first), so it is exact.
        self._waiting = 0
        # One message at a time, nothing leased ahead: the one worker leases for itself.
        self._solo = self.options.concurrency == 1 and self.options.lease_ahead == 0
        self._leasing = False  # the solo worker is in its lease call (stop cancels it then)
        self._nursery: trio.Nursery | None = None  # where workers are started (on demand)
        self._workers = 0  # workers started by this run
        self._starting = 0  # started, not yet running (each takes a delivery when it runs)
        self._acks: list[Delivery] = []
        self._acks_ready = trio.Event()
        self._acker_idle = False  # no acker is sending acks: it waits, or is not started
        self._acker_started = False  # the acker is started with the first ack it gets
        self._keeper_started = False  # the lease keeper, with the first delivery held
        self._inline: list[Delivery] = []  # acks a worker is writing itself (_ack_inline)
        self._lease_timer = trio.CancelScope()  # see _lease_clock
        self._held_since: float | None = None  # trio time the solo worker took its delivery
        self._fetching = trio.CancelScope()
        self.stopping = False
        log = self._actor_logger
        self._lease_outage = Outage(log, f"lease messages of {subscription.key!r}")
        self._ack_outage = Outage(log, f"acknowledge messages of {subscription.key!r}")
        self._extend_outage = Outage(log, f"extend leases of {subscription.key!r}")

    def _actor_logger(self) -> Any:
        return self._dispatcher.logger(self.step.name, "")

    @property
    def name(self) -> str:
        return self.subscription.key

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._fetching = trio.CancelScope()
        if self.stopping:
            self._fetching.cancel()
        # A restart (after a crash) starts over: the tasks counted here died with the run.
        self._waiting = self._workers = self._starting = 0
        self._acker_started = self._keeper_started = False
        self._acker_idle = True
        self._lease_timer = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            # The acker and the lease keeper start when first needed, as workers do: an
            # idle subscription holds no task besides this one (its fetcher or solo worker).
            self._nursery = nursery
            if self._acks:  # left by a crashed run
                self._wake_acker()
            self._lease_clock()  # a keeper for what a crashed run left held
            if self._solo:
                self._workers = self._starting = 1
            else:
                self._hire()  # for what a crashed run left in the mailbox
            task_status.started()
            # The fetcher (or the solo worker) runs in this task, not a task of its own;
            # then this runs until cancelled, even once stopped with no task left (a
            # permanent child of its supervisor that returned would be restarted).
            if self._solo:
                await self._work()
            else:
                await self._fetch()
            await trio.sleep_forever()

    def _hire(self) -> bool:
        """Start a worker for each delivery waiting in the mailbox beyond those that
        workers started and not yet running will take, up to `concurrency` workers in all.
        True when one was started."""
        want = min(
            self.mailbox.buffered() - self._starting, self.options.concurrency - self._workers
        )
        if want <= 0:
            return False
        assert self._nursery is not None
        for _ in range(want):
            self._workers += 1
            self._starting += 1
            self._nursery.start_soon(self._work)
        return True

    # -- fetching ------------------------------------------------------------------------

    def _ahead(self) -> int:
        """How many to lease beyond the workers: `lease_ahead` (prefetch, standard queues
        only) once handlers have proven fast (see FAST_HANDLER), else none."""
        mean = self._mean_handler
        return self.options.lease_ahead if mean is not None and mean < FAST_HANDLER else 0

    def stop_fetching(self) -> None:
        """Graceful stop: lease nothing more. What is running is finished (the runtime's
        drain waits for `held` to empty); what was leased ahead and still waits in the
        mailbox is released back to the queue with its attempt uncounted, so another
        instance (or the next start) runs it at once instead of this stop waiting for it."""
        self.stopping = True
        # The solo worker's scope is also its handler's: cancelled only while it leases.
        if self._leasing or not self._solo:
            self._fetching.cancel()
        self._slot_freed.set()

    async def _fetch(self) -> None:
        with self._fetching:
            await self._fetch_until_stopped()
        if self.stopping:
            await self._release_buffered()

    async def _release_buffered(self) -> None:
        buffered: list[Delivery] = []
        while True:
            try:
                buffered.append(self.mailbox.receive_nowait())
            except trio.WouldBlock:
                break
        if not buffered:
            return
        for delivery in buffered:
            self.held.pop(delivery.receipt, None)
        self._lease_clock()
        await self._last_call(self._backend.release, buffered, "release messages leased ahead")

    async def _last_call(
        self,
        call: Callable[[list[Delivery]], Awaitable[None]],
        batch: list[Delivery],
        what: str,
    ) -> None:
        """A backend call the stopping actor still owes (shielded, for a few seconds). A hard
        stop (the runtime's caller cancelled it) stops the backend at the same moment: then
        the messages come back after their lease instead, and the log says so."""
        with trio.CancelScope(shield=True, deadline=trio.current_time() + ACK_FLUSH_DEADLINE):
            try:
                await call(batch)
            except BackendError as exc:
                self._dispatcher.logger(self.step.name, "").warn(
                    f"could not {what} while stopping; they will be delivered again after "
                    "their lease",
                    count=len(batch),
                    error=str(exc),
                )

    async def _fetch_until_stopped(self) -> None:
        while True:
            # `held` counts buffered and running deliveries, including one already handed to
            # a waiting worker that has not run yet (the mailbox no longer counts it):
            # leasing past it would let a concurrency-1 priority queue run a lower priority
            # first. Leasing ahead, the next batch is on its way while this one runs; and
            # while busy, it is asked for in batches of at least `ahead` (one backend call per
            # batch, not per freed slot), the workers still holding `concurrency` meanwhile.
            ahead = self._ahead()
            free = self.options.concurrency + ahead - len(self.held)
            if free < max(1, ahead):
                self._slot_freed = trio.Event()
                await self._slot_freed.wait()
                continue
            # Woken in the same moment as a hard stop? Then the backend is stopping too: meet
            # the cancellation rather than its "not running".
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                if self.gate is None:
                    deliveries = await self._backend.receive(self.subscription, free)
                else:
                    deliveries = await self.gate.receive(free)
            except BackendUnavailable as exc:
                await self._lease_outage.failed(exc)
                continue
            self._lease_outage.ok()
            # An idle worker takes the first delivery straight from the send: then let it
            # start the handler before this task goes on to ask the backend again.
            idle, count = self._waiting, len(deliveries)
            direct = idle > 0 and count > 0
            held, put = self.held, self.mailbox.put_nowait
            for delivery in deliveries:
                held[delivery.receipt] = delivery
                put(delivery)  # room for it: `free` counted what `held` leaves
            if count > idle:
                self._waiting = 0
                # Some wait in the mailbox with no idle worker: start more if allowed.
                if self._workers < self.options.concurrency and self._hire():
                    direct = True  # a started worker takes one when it runs
            else:
                self._waiting = idle - count
            if direct:
                # The lease keeper's timer is set once the worker started (a round later): a
                # quick handler is done by then, and its delivery costs the timer nothing.
                self._picked = trio.Event()
                self._pick_awaited = True
                try:
                    await self._picked.wait()
                finally:
                    self._lease_clock()
            else:
                self._lease_clock()

    # -- handling ------------------------------------------------------------------------

    async def _work(self) -> None:
        # One cancel scope per worker, not per handler call (a scope costs about two
        # checkpoints): `cancel_running` cancels the scope of the worker running that
        # message, and the worker starts over with a new one. The solo worker's scope is
        # also its lease call's: `stop_fetching` cancels it there, and the worker ends.
        self._starting -= 1
        if not self._solo:
            while True:
                with trio.CancelScope() as scope:
                    await self._work_in(scope)
        while not self.stopping:
            with trio.CancelScope() as scope:
                self._fetching = scope
                await self._solo_in(scope)

    async def _work_in(self, scope: trio.CancelScope) -> None:
        receive, receive_nowait = self.mailbox.receive, self.mailbox.receive_nowait
        current_time = trio.lowlevel.current_clock().current_time  # trio.current_time's own
        taken = 0
        while True:
            # A cancel point before each delivery, but a schedule point only every
            # _SCHEDULE_EVERY while the mailbox holds the next one (the fetcher fills it in
            # batches): a scheduler round per message costs more than a quick handler does.
            # Other tasks still run regularly, and a handler that awaits yields anyway.
            taken += 1
            if taken % _SCHEDULE_EVERY:
                await trio.lowlevel.checkpoint_if_cancelled()
            else:
                await trio.lowlevel.checkpoint()
            try:
                delivery = receive_nowait()
            except trio.WouldBlock:
                self._waiting += 1  # the fetcher counts it down when it hands this one a delivery
                try:
                    delivery = await receive()
                except BaseException:
                    self._waiting -= 1  # cancelled while parked: nothing was handed over
                    raise
            if self._pick_awaited:  # rarely while busy: skip the Event's call then
                self._pick_awaited = False
                self._picked.set()
            started = current_time()
            message_id = delivery.envelope.id
            self.running[message_id] = scope
            try:
                await self._handle(delivery)
            except BackendUnavailable as exc:
                self._unrecorded(delivery, exc)
            finally:
                took = current_time() - started
                mean = self._mean_handler
                self._mean_handler = took if mean is None else mean + _MEAN_WEIGHT * (took - mean)
                self.held.pop(delivery.receipt, None)
                if not self.held:
                    self._lease_clock()
                self._slot_freed.set()
                if self.running.get(message_id) is scope:
                    del self.running[message_id]
            if self._acks and not self._acks_ready.is_set():
                await self._ack_inline()

    async def _solo_in(self, scope: trio.CancelScope) -> None:
        """The solo worker (one message at a time, nothing leased ahead): lease one
        delivery when free, run it, repeat. No fetcher, no mailbox: a scheduler round per
        delivery. `_leasing` is true only in the lease call, which a graceful stop cancels
        (through `scope`); a delivery leased in that same moment is released, as the
        fetcher releases what it leased ahead. Returns once stopping."""
        held, running = self.held, self.running
        current_time = trio.lowlevel.current_clock().current_time  # trio.current_time's own
        while True:
            # A cancel point; the schedule point is the lease call's, as the fetcher's is.
            await trio.lowlevel.checkpoint_if_cancelled()
            self._leasing = True
            try:
                if self.stopping:
                    return
                if self.gate is None:
                    deliveries = await self._backend.receive(self.subscription, 1)
                else:
                    deliveries = await self.gate.receive(1)
            except BackendUnavailable as exc:
                await self._lease_outage.failed(exc)
                continue
            finally:
                self._leasing = False
            self._lease_outage.ok()
            if not deliveries:
                continue
            if self.stopping:
                await self._last_call(self._backend.release, deliveries, "release messages leased")
                return
            (delivery,) = deliveries  # asked for one
            held[delivery.receipt] = delivery
            # The lease keeper's timer (a period from now) is armed only if the handling
            # suspends: until it does, nothing else runs, the keeper included, so a handler
            # that returns without waiting (a cron tick that logs a line) costs no timer.
            self._held_since = current_time()
            message_id = delivery.envelope.id
            running[message_id] = scope
            try:
                await on_first_suspension(self._handle(delivery), self._lease_clock)
            except BackendUnavailable as exc:
                self._unrecorded(delivery, exc)
            finally:
                held.pop(delivery.receipt, None)
                if not held:
                    self._lease_clock()
                if running.get(message_id) is scope:
                    del running[message_id]
            if self._acks and not self._acks_ready.is_set():
                await self._ack_inline()

    def _unrecorded(self, delivery: Delivery, exc: BackendUnavailable) -> None:
        # Its outcome (a retry, a dead letter) could not be written: the delivery comes
        # back after its lease. Not an actor crash (see the module docstring).
        self._dispatcher.logger(self.step.name, delivery.envelope.trace_id).error(
            "backend unavailable: the outcome of a delivery could not be recorded; "
            "it will be delivered again after its lease",
            message_id=delivery.envelope.id,
            error=str(exc),
        )

    async def _handle(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        if self._skip and envelope.id in self._skip:
            self._skip.discard(envelope.id)
            return  # cancelled before it started: its lease is gone, nothing to settle
        if self._accept is not None and not self._accept(envelope.data):
            self._ack(delivery)
            return
        message = MessageInfo(envelope.id, delivery.attempt, envelope.topic, envelope.group)
        if delivery.attempt > self._max_attempts:
            # Every attempt so far lost its lease without an outcome: the handler killed its
            # process (or hung past the lease) each time. Running it again would loop forever.
            error = (
                f"no attempt finished: {delivery.attempt - 1} deliveries lost their lease "
                "(the process died or the handler hung) and attempts are exhausted"
            )
            logger = self._dispatcher.logger(self.step.name, envelope.trace_id, message)
            logger.error(
                "delivery abandoned: attempts exhausted",
                error=error,
                attempts=delivery.attempt - 1,
                dead_letter_queue=self.options.dead_letter_queue,
            )
            # The letter records the attempts given, not this delivery that will never run
            # (the lease is found by the receipt, which keeps its own count).
            await self._exhausted(attrs.evolve(delivery, attempt=delivery.attempt - 1), error, None)
            return
        if delivery.expires_at is not None and self._dispatcher.clock.now() >= delivery.expires_at:
            await self._expired(delivery, message)
            return
        try:
            payload = self._validate(envelope.data) if self._validate else envelope.data
        except InputValidationError as exc:
            logger = self._dispatcher.logger(self.step.name, envelope.trace_id, message)
            logger.error(
                "input failed validation; sent to dead letters without retrying",
                topic=envelope.topic,
                errors=exc.messages,
                dead_letter_queue=self.options.dead_letter_queue,
            )
            await self._exhausted(delivery, storable(str(exc)), None)
            return
        # `self._dispatcher.context(...)`, built here: one frame fewer per delivery.
        ctx = Context(
            step=self.step,
            trigger=self.trigger,
            services=self._dispatcher,
            trace_id=envelope.trace_id,
            message=message,
            data=payload,
            input=payload,
        )
        if self._condition:
            # User code, like the handler: raising is a failed attempt of this delivery; false
            # acks the message unhandled.
            try:
                wanted = await self._dispatcher.wanted(self.step, self.trigger, payload, ctx)
            except Exception as exc:
                what = f"{self.trigger.type} trigger condition"
                await self._failed(delivery, ctx.logger, exc, what)
                return
            if not wanted:
                self._ack(delivery)
                return
        timeout = self.options.timeout
        started = self._dispatcher.clock.now() if self._records else None
        try:
            # Past its `timeout`, the call raises HandlerTimeout: a failed attempt like another.
            result = await self._dispatcher.call(
                self.step, self.trigger, payload, ctx, timeout=timeout
            )
        except Exception as exc:
            await self._failed(delivery, ctx.logger, exc)
        else:
            self._ack(delivery, result, started)

    async def _expired(self, delivery: Delivery, message: MessageInfo) -> None:
        """Leased in time but not started in time (it waited behind others in the mailbox):
        it ends as the backend ends a message expired before its lease, never run late."""
        assert delivery.expires_at is not None
        error = expired_error(delivery.expires_at)
        logger = self._dispatcher.logger(self.step.name, delivery.envelope.trace_id, message)
        logger.warn("message expired before a handler started it", error=error)
        # attempt 0: the letter records that no attempt ran (the receipt finds the lease)
        await self._backend.bury(attrs.evolve(delivery, attempt=0), error=error)
        self._settled()

    async def _failed(
        self, delivery: Delivery, logger: Logger, exc: Exception, what: str = "handler"
    ) -> None:
        """A failed attempt: retried after its backoff, or (attempts exhausted, or the
        failure says no attempt can succeed) dead-lettered with its traceback."""
        error = storable(describe(exc))
        attempt = delivery.attempt
        if self._on_failure is not None:
            failure = HandlerError(self.step.name, delivery.envelope.id, exc)
            failure.__cause__ = exc
            self._on_failure(failure)
        # One part of a group saying the message can never succeed is enough.
        final = find_error(exc, NonRetryable)
        if final is None and self._policy.should_retry(attempt):
            delay = self._policy.delay(attempt)
            logger.warn(
                f"{what} failed; will retry",
                error=error,
                retry_in=round(delay, 3),
                attempts_left=self._policy.max_attempts - attempt,
                exc_info=exc,
            )
            traceback = storable(format_failure(exc))
            await self._backend.retry(delivery, delay=delay, error=error, traceback=traceback)
            self._settled()
            return
        if final is not None:
            error = storable(describe(final))
            logger.error(
                f"{what} failed, not retryable; sent to dead letters",
                error=error,
                attempts=attempt,
                dead_letter_queue=self.options.dead_letter_queue,
                exc_info=exc,
            )
        else:
            logger.error(
                f"{what} failed; attempts exhausted",
                error=error,
                attempts=attempt,
                dead_letter_queue=self.options.dead_letter_queue,
                exc_info=exc,
            )
        await self._exhausted(delivery, error, storable(format_failure(exc)))

    async def _exhausted(self, delivery: Delivery, error: str, traceback: str | None) -> None:
        """The message ends its life unhandled: the backend moves it to the dead-letter store
        and, when the subscription names a dead-letter topic, publishes its announcement
        there, in one atomic write (a crash leaves it queued or stored, never lost, never
        twice; a topic nobody reads still leaves it listable and re-drivable)."""
        topic = self.options.dead_letter_queue
        announced: list[Envelope] = []

        def announce(letter: DeadLetter) -> Envelope:
            assert topic is not None
            envelope = announcement(topic, self.step.name, letter)
            announced.append(envelope)
            return envelope

        letter = await self._backend.bury(
            delivery, error=error, traceback=traceback, announce=announce if topic else None
        )
        if letter.id and announced:
            self._publisher.published(announced[-1:], source=self.step.name)
        self._settled()

    def _settled(self) -> None:
        """A delivery reached the backend's books (acked, retried, buried): observers such as
        the test harness's settle() look again without waiting for a poll."""
        if self._on_settled is not None:
            self._on_settled()

    # -- acks and leases -----------------------------------------------------------------

    def _ack(self, delivery: Delivery, result: Any = None, started: float | None = None) -> None:
        records = self._records
        if records is not None and started is not None:
            text = note = None
            if result is not None:
                text, note = encode_result(
                    result, jsonify=records.jsonify, max_bytes=records.max_bytes
                )
            self._settlements[delivery.receipt] = (started, text, note)
        acks = self._acks
        acks.append(delivery)
        # Alone (nothing else held, no ack pending, the acker idle): the worker writes this
        # ack itself once its bookkeeping is done (`_ack_inline`), a scheduler round sooner
        # than waking the acker. Otherwise the acker batches it with the others.
        if not (self._acker_idle and len(acks) == 1 and len(self.held) == 1 and not self.stopping):
            self._acks_ready.set()  # `_wake_acker`, inline: a call fewer per busy message
            if not self._acker_started:
                self._wake_acker()

    def _wake_acker(self) -> None:
        self._acks_ready.set()
        if not self._acker_started:
            self._acker_started = True
            assert self._nursery is not None
            self._nursery.start_soon(self._acker)

    async def _ack_inline(self) -> None:
        """Write the pending acks from this worker (see `_ack`). Cut short by a stop, they
        are still written, shielded, as the acker's last call writes its own; a backend
        that cannot take them leaves them to the acker, which tries again."""
        batch, self._acks = self._acks, []
        self._inline = batch  # counted by pending_acks while under way
        try:
            await self._send_acks(batch)
        except BackendUnavailable:
            self._acks[:0] = batch
            self._wake_acker()
            return
        except trio.Cancelled:
            await self._last_call(self._send_acks, batch, "acknowledge finished messages")
            raise
        finally:
            self._inline = []
        self._settled()

    async def _send_acks(self, batch: list[Delivery]) -> None:
        """Ack a batch; with records kept, as one `finish` that also keeps each settlement
        (finished = when the batch is acked: one clock read per batch, not per message)."""
        if self._records is None:
            await self._backend.ack(batch)
            return
        now = self._dispatcher.clock.now()
        keep = now + self._records.retention
        kept = self._settlements.get
        settlements = []
        for delivery in batch:
            # (started, result text, note); none for a delivery acked without a handler call
            started, text, note = kept(delivery.receipt) or (None, None, None)
            settlements.append(Settlement("done", delivery.attempt, started, now, keep, text, note))
        await self._backend.finish(batch, settlements)
        for delivery in batch:
            self._settlements.pop(delivery.receipt, None)

    def cancel_running(self, message_ids: Any) -> list[str]:
        """Cancel the handlers running here for these message ids (the backend has taken
        the messages out already); returns the ids that were running."""
        hit = []
        for message_id in message_ids:
            if message_id not in self.running and any(
                d.envelope.id == message_id for d in self.held.values()
            ):
                self._skip.add(message_id)  # leased ahead and waiting here: never start it
            scope = self.running.pop(message_id, None)
            if scope is not None:
                # The worker's scope: the handler stops at its next checkpoint, and as the
                # backend already keeps the message as cancelled (its lease lost), nothing
                # is acked, retried or dead-lettered.
                scope.cancel()
                hit.append(message_id)
                self._actor_logger().warn(
                    "handler cancelled: its message was cancelled", message_id=message_id
                )
        return hit

    async def _acker(self) -> None:
        try:
            while True:
                self._acker_idle = True
                await self._acks_ready.wait()
                self._acker_idle = False
                # Woken in the same moment as a hard stop? Then the backend is stopping too:
                # leave the acks to the shielded flush below.
                await trio.lowlevel.checkpoint_if_cancelled()
                self._acks_ready = trio.Event()
                batch, self._acks = self._acks, []
                if batch:
                    try:
                        await self._send_acks(batch)
                    except BackendUnavailable as exc:
                        self._acks[:0] = batch  # kept, ahead of newer ones, for the next try
                        self._acks_ready.set()
                        await self._ack_outage.failed(exc)
                        continue
                    self._ack_outage.ok()
                    self._settled()
        finally:
            self._acker_idle = False
            # Handlers that returned must not run again just because we are stopping.
            if self._acks:
                batch, self._acks = self._acks, []
                await self._last_call(self._send_acks, batch, "acknowledge finished messages")

    def _lease_clock(self) -> None:
        """`held` changed: the lease keeper's timer runs (a period of lease/3 from the first
        delivery held) while something is held and stops when nothing is. Its deadline is
        moved, not the task woken: a delivery handled within the period costs the keeper
        no wake-up (under MockClock, no clock jump of its own)."""
        timer = self._lease_timer
        if not self.held:
            if timer.deadline != math.inf:
                timer.deadline = math.inf
        elif timer.deadline == math.inf:
            if not self._keeper_started:  # it sets its timer itself when it starts
                self._keeper_started = True
                assert self._nursery is not None
                self._nursery.start_soon(self._keep_leases)
                return
            # From when the solo worker took its delivery, if it did (its handler may have
            # run a while before suspending), else from now.
            since, self._held_since = self._held_since, None
            start = trio.current_time() if since is None else since
            timer.deadline = start + self.options.lease / 3

    async def _keep_leases(self) -> None:
        while True:
            with trio.CancelScope() as self._lease_timer:
                self._lease_clock()
                await trio.sleep_forever()
            if self.held:
                try:
                    held = list(self.held.values())
                    await self._backend.extend(held, self.options.lease)
                    if self.running:
                        # Cancelled on another instance (or through the backend): stop here.
                        gone = await self._backend.cancel_requested(held)
                        self.cancel_running([d.envelope.id for d in gone])
                except BackendUnavailable as exc:
                    await self._extend_outage.failed(exc)  # then the next period tries again
                    continue
                self._extend_outage.ok()

    def pending_acks(self) -> int:
        return len(self._acks) + len(self._inline)
