"""A model of the queue promises, and a seeded random walk that holds a backend to it.

The model knows, for every message, whether it is ready, leased (until when, under which
receipt), delayed (until when), scheduled (a delayed emit, until it is due) or done, and
from that which messages a `receive` may return: any of them (standard), the head of each
group (fifo), or the best by (priority, publish order). Delayed emits have priority 3 and
no group, so where they land among the others is fixed (by due time). Some messages carry
an expiry: a receive may turn those it meets past their expiry, never handed out, into
expired dead letters (the walk checks each one it finds). Some carry an idempotency key,
whose repeats within the window must answer the first id and enqueue nothing.

The walk publishes, receives, acks, retries, buries (also with stale deliveries; half of
the burials announced on a dead-letter topic), cancels (a message in any state, delayed
emits too) and moves the clock, checking after each step that `receive` returned what the
model allows, that attempts count every earlier delivery, that stale settling changed
nothing, that the pending, dead and announced counts agree, that `message_status` of two
messages reads what the model says (delayed, queued, running, retrying, dead, expired,
cancelled; nothing for an acked one), and at the end that every dead letter is listed once.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from trio.testing import MockClock

from motet._clock import Clock
from motet._envelope import (
    DeadLetter,
    Delivery,
    Envelope,
    QueueDepth,
    QueueOptions,
    QueueStrategy,
    Subscription,
    is_expired,
)
from motet.backends._protocol import Backend

LEASE = 10.5  # never a sum of the integer jumps below, so no expiry lands on a tie
KEY_WINDOW = 30.0  # s an idempotency key is remembered in the walk

ReceiveNow = Callable[[Backend, Subscription, int], Awaitable[list[Delivery]]]


@attrs.define
class Modelled:
    id: str
    seq: int
    group: str | None
    priority: int
    state: str = "ready"  # ready | leased | delayed | scheduled | done
    ending: str = ""  # done: acked | dead | expired | cancelled
    attempts: int = 0  # deliveries so far
    receipt: str = ""
    until: float = 0.0  # lease end, retry time, or when a scheduled message is due
    expires: float | None = None
    # Place in its queue: publish order, or for a delayed emit (filed when due, after what
    # was there, in due order) past every message published without a delay.
    order: float = 0.0


class QueueModel:
    def __init__(self, strategy: QueueStrategy) -> None:
        self.strategy = strategy
        self.messages: dict[str, Modelled] = {}
        self.buried: list[str] = []  # ids of the messages buried, in order
        self.announced = 0  # burials announced on the dead-letter topic
        self.keys: dict[str, tuple[str, float]] = {}  # key -> (first id, until)

    @staticmethod
    def available(m: Modelled, now: float) -> bool:
        return m.state == "ready" or (
            m.state in ("leased", "delayed", "scheduled") and now >= m.until
        )

    def receivable(self, now: float) -> list[Modelled]:
        live = sorted(
            (m for m in self.messages.values() if m.state != "done" and self.filed(m, now)),
            key=_seq,
        )
        if self.strategy == "fifo":
            heads: dict[Any, Modelled] = {}
            for m in live:
                heads.setdefault(m.group if m.group is not None else m.id, m)
            live = list(heads.values())
        ready = [m for m in live if self.available(m, now)]
        if self.strategy == "priority":
            ready.sort(key=lambda m: (-m.priority, _seq(m)))
        return ready

    def holder(self, delivery: Delivery) -> Modelled | None:
        """The message if this delivery is its latest and it is still out, else None:
        settling a delivery whose message was handed out again must change nothing."""
        m = self.messages[delivery.envelope.id]
        if m.state == "leased" and m.receipt == delivery.receipt:
            return m
        return None

    @staticmethod
    def filed(m: Modelled, now: float) -> bool:
        """In its queue: anything but a delayed emit not yet due."""
        return m.state != "scheduled" or now >= m.until

    def pending(self, now: float) -> int:
        return sum(1 for m in self.messages.values() if m.state != "done" and self.filed(m, now))

    def scheduled(self, now: float) -> int:
        return sum(1 for m in self.messages.values() if not self.filed(m, now))

    def take_key(self, key: str, id: str, now: float, window: float) -> str:
        """The id a publish with `key` is enqueued under (its own, or the first one's)."""
        first = self.keys.get(key)
        if first is not None and now < first[1]:
            return first[0]
        self.keys[key] = (id, now + window)
        return id

    def depth(self, now: float) -> QueueDepth:
        """Expired leases and due retries counted as ready (the memory backend's reading)."""
        ms = list(self.messages.values())
        waiting = [m for m in ms if m.state in ("leased", "delayed") and now < m.until]
        return QueueDepth(
            ready=self.pending(now) - len(waiting),
            leased=sum(1 for m in waiting if m.state == "leased"),
            delayed=sum(1 for m in waiting if m.state == "delayed"),
            dead=len(self.buried),
            scheduled=self.scheduled(now),
        )


async def expired_since(
    backend: Backend, s: Subscription, model: QueueModel, now: float, where: str
) -> set[str]:
    """The messages a receive just turned into expired dead letters (checking each one
    was never handed out and was past its expiry); the model buries them."""
    letters = await backend.dead_letters(s.key, limit=10_000)
    gone: set[str] = set()
    for letter in letters[len(model.buried) :]:
        m = model.messages[letter.envelope.id]
        assert is_expired(letter), f"{where}: {letter}"
        assert m.attempts == 0 and m.expires is not None and m.expires <= now, where
        assert m.state != "done", where
        m.state, m.ending = "done", "expired"
        model.buried.append(m.id)
        gone.add(m.id)
    return gone


def expected_status(m: Modelled, now: float) -> tuple[str, int] | None:
    """(state, attempts) `message_status` must show for the walk's one subscription, or None
    (acked: an ack keeps no record)."""
    if m.state == "done":
        return None if m.ending == "acked" else (m.ending, m.attempts)
    if m.state == "scheduled":
        return ("delayed" if now < m.until else "queued"), 0
    if m.state == "leased" and now < m.until:
        return "running", m.attempts
    return ("retrying" if m.attempts else "queued"), m.attempts


async def check_status(
    backend: Backend, model: QueueModel, ids: list[str], now: float, where: str
) -> None:
    """Status by id agrees with the model, for delayed, keyed, expired, cancelled ones too."""
    for message_id in ids:
        m = model.messages[message_id]
        status = await backend.message_status(message_id)
        got = None
        if status is not None:
            [delivery] = status.deliveries
            got = (delivery.state, delivery.attempts)
        assert got == expected_status(m, now), f"{where}: status of {m}: {status}"


async def cancel_one(
    backend: Backend,
    s: Subscription,
    model: QueueModel,
    rng: random.Random,
    now: float,
    where: str,
) -> None:
    """Cancel a message the model still has out (in any state): it is taken out for good,
    its handler told when its lease is current, and it reads `cancelled`."""
    live = [m for m in model.messages.values() if m.state != "done"]
    if not live:
        return
    m = rng.choice(live)
    outcome = await backend.cancel(m.id, keep_until=now + 1e6)
    running = (s.key,) if m.state == "leased" and now < m.until else ()
    assert (outcome.cancelled, outcome.running) == ((s.key,), running), f"{where}: {m}"
    m.state, m.ending = "done", "cancelled"


def _seq(m: Modelled) -> float:
    return m.order


async def random_walk(
    backend: Backend,
    clock: Clock,
    mock_clock: MockClock,
    receive_now: ReceiveNow,
    *,
    strategy: QueueStrategy,
    seed: str,
    steps: int,
    exact_depth: bool = False,
) -> None:
    rng = random.Random(seed)
    s = Subscription(f"walk-{strategy}", "w", QueueOptions(strategy=strategy, lease=LEASE))
    watcher = Subscription(f"{s.topic}.failed", "watcher")  # nobody receives from it
    await backend.declare([s, watcher])

    def announce(letter: DeadLetter) -> Envelope:
        data = {"dead_letter_id": letter.id, "data": letter.envelope.data}
        return Envelope(watcher.topic, data, letter.envelope.trace_id)

    model = QueueModel(strategy)
    held: list[Delivery] = []
    seq = 0
    for step in range(steps):
        roll = rng.random()
        now = clock.now()
        where = f"seed {seed!r} step {step}"
        if roll < 0.25:
            batch, expect = [], []
            for _ in range(rng.randint(1, 3)):
                seq += 1
                group = rng.choice(["A", "B", "C", None])
                e = Envelope(
                    s.topic, {"seq": seq}, "trace", group=group, priority=rng.choice([0, 1, 5])
                )
                kind = rng.random()
                if kind < 0.15:  # delayed: due at a time no other event lands on
                    due = now + rng.choice([2, 5, 13]) + seq * 0.001 + 0.0003
                    e = attrs.evolve(e, group=None, priority=3, not_before=due, created_at=now)
                elif kind < 0.3:
                    e = attrs.evolve(e, expires_at=now + rng.choice([1, 4, 20]) + 0.25)
                elif kind < 0.4:
                    e = attrs.evolve(e, key=rng.choice(["k1", "k2"]))
                m = Modelled(e.id, seq, e.group, e.priority, expires=e.expires_at, order=seq)
                if e.not_before is not None:
                    m.state, m.until, m.order = "scheduled", e.not_before, 1e9 + e.not_before
                sent = e.id if e.key is None else model.take_key(e.key, e.id, now, KEY_WINDOW)
                if sent == e.id:
                    model.messages[e.id] = m
                expect.append(sent)
                batch.append(e)
            assert await backend.publish(batch, dedup_window=KEY_WINDOW) == expect, where
        elif roll < 0.5:
            max_count = rng.choice([1, 2, 100])
            allowed = model.receivable(now)
            got = await receive_now(backend, s, max_count)
            if await expired_since(backend, s, model, now, where):
                allowed = model.receivable(now)  # an expired fifo head lets its group go on
            ids = [d.envelope.id for d in got]
            if strategy == "priority":
                assert ids == [m.id for m in allowed[:max_count]], where
            else:  # which ones, when not all fit, is only "roughly publish order"
                assert len(ids) == min(max_count, len(allowed)), where
                assert set(ids) <= {m.id for m in allowed}, where
            for d in got:
                m = model.messages[d.envelope.id]
                late = m.attempts == 0 and m.expires is not None and now >= m.expires
                assert not late, f"{where}: {d.envelope.id} handed out after its expiry"
            for d in got:
                leased = model.messages[d.envelope.id]
                leased.attempts += 1
                assert d.attempt == leased.attempts, f"{where}: attempts count earlier deliveries"
                leased.state, leased.receipt, leased.until = "leased", d.receipt, now + LEASE
                held.append(d)
        elif roll >= 0.76 and roll < 0.8:
            await cancel_one(backend, s, model, rng, now, where)
        elif roll < 0.8 and held:
            d = held.pop(rng.randrange(len(held)))
            m = model.holder(d)  # None: stale, and settling it must change nothing
            # Expired but not handed out again: the Protocol lets settling apply or not,
            # so learn which from the counts (both keep every message exactly once).
            late = m is not None and now >= m.until
            before = (await backend.depth())[s.key]
            action = rng.choice(["ack", "ack", "retry", "bury"])
            if action == "ack":
                await backend.ack([d])
                after = (await backend.depth())[s.key]
                if m and (not late or after.pending == before.pending - 1):
                    m.state, m.ending = "done", "acked"
            elif action == "retry":
                delay = rng.choice([0, 2, 7])
                await backend.retry(d, delay=delay, error="boom")
                after = (await backend.depth())[s.key]
                if m and (not late or delay == 0 or after.delayed == before.delayed + 1):
                    m.state, m.until = "delayed", now + delay
            elif m:  # burying a stale delivery is left unspecified by the Protocol
                announced = rng.random() < 0.5
                letter = await backend.bury(
                    d,
                    error="dead",
                    traceback=f"tb {m.seq}",
                    announce=announce if announced else None,
                )
                if not late or letter.id:
                    m.state, m.ending = "done", "dead"
                    model.buried.append(m.id)
                    model.announced += announced
        else:
            mock_clock.jump(rng.choice([1, 3, 11]))
        depths = await backend.depth()
        depth = depths[s.key]
        if exact_depth:
            assert depth == model.depth(clock.now()), where
        expected = (model.pending(clock.now()), len(model.buried), model.announced)
        got = (depth.pending, depth.dead, depths[watcher.key].pending)
        assert got == expected, f"{where}: {depths}, model {expected}"
        if model.messages:
            ids = rng.sample(sorted(model.messages), min(2, len(model.messages)))
            await check_status(backend, model, ids, clock.now(), where)
    # Whatever is still pending is delivered in the end.
    mock_clock.jump(1000)
    while got := await receive_now(backend, s, 100):
        await backend.ack(got)
        for d in got:
            model.messages[d.envelope.id].state = "done"
            model.messages[d.envelope.id].ending = "acked"
    await expired_since(backend, s, model, clock.now(), f"seed {seed!r} at the end")
    assert model.pending(clock.now()) == 0
    assert (await backend.depth())[s.key].pending == 0
    letters = await backend.dead_letters(s.key, limit=10_000)
    assert [x.envelope.id for x in letters] == model.buried  # each once, oldest first
    assert [x.traceback for x in letters] == [
        None if is_expired(x) else f"tb {x.envelope.data['seq']}" for x in letters
    ]
