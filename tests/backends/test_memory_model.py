"""The memory backend against a model of the queue promises, over seeded random walks.

The model knows, for every message, whether it is ready, leased (until when, under which
receipt), delayed (until when) or done, and from that which messages a `receive` may
return: all of them (standard), the head of each group (fifo), or the best by (priority,
publish order). Each step checks that `receive` returns exactly what the model allows,
attempts count every earlier delivery, and a stale ack/retry/bury changes nothing.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import Delivery, Envelope, QueueDepth, QueueOptions, Strategy, Subscription
from motet.backends import MemoryBackend

LEASE = 10.5  # never a sum of the integer jumps below, so no expiry lands on a tie


@attrs.define
class Modelled:
    id: str
    seq: int
    group: str | None
    priority: int
    state: str = "ready"  # ready | leased | delayed | done
    attempts: int = 0  # deliveries so far
    receipt: str = ""
    until: float = 0.0  # lease end or retry time


class Model:
    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.messages: dict[str, Modelled] = {}

    def available(self, m: Modelled, now: float) -> bool:
        return (
            m.state == "ready"
            or (m.state == "leased" and now >= m.until)
            or (m.state == "delayed" and now >= m.until)
        )

    def receivable(self, now: float) -> list[Modelled]:
        live = sorted((m for m in self.messages.values() if m.state != "done"), key=_seq)
        if self.strategy == "fifo":
            heads: dict[Any, Modelled] = {}
            for m in live:
                heads.setdefault(m.group if m.group is not None else m.id, m)
            live = list(heads.values())
        ready = [m for m in live if self.available(m, now)]
        if self.strategy == "priority":
            ready.sort(key=lambda m: (-m.priority, m.seq))
        return ready

    def holds(self, delivery: Delivery, now: float) -> Modelled | None:
        m = self.messages[delivery.envelope.id]
        if m.state == "leased" and m.receipt == delivery.receipt and now < m.until:
            return m
        return None

    def depth(self, now: float) -> QueueDepth:
        states = [m.state for m in self.messages.values()]
        expired = sum(
            1 for m in self.messages.values() if m.state in ("leased", "delayed") and now >= m.until
        )
        leased = sum(1 for m in self.messages.values() if m.state == "leased" and now < m.until)
        delayed = sum(1 for m in self.messages.values() if m.state == "delayed" and now < m.until)
        return QueueDepth(ready=states.count("ready") + expired, leased=leased, delayed=delayed)


def _seq(m: Modelled) -> int:
    return m.seq


async def receive_now(backend: MemoryBackend, s: Subscription, max_count: int) -> list[Delivery]:
    got: list[Delivery] = []
    async with trio.open_nursery() as nursery:

        async def receive() -> None:
            got.extend(await backend.receive(s, max_count))
            nursery.cancel_scope.cancel()

        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return got


@pytest.mark.parametrize("strategy", ["standard", "fifo", "priority"])
@pytest.mark.parametrize("seed", range(12))
async def test_random_walk_matches_the_model(
    strategy: Strategy, seed: int, nursery: trio.Nursery, clock: WallClock, mock_clock: MockClock
) -> None:
    rng = random.Random(f"{strategy}-{seed}")
    backend: MemoryBackend = await nursery.start(MemoryBackend().run, clock)
    s = Subscription("t", "w", QueueOptions(strategy=strategy, lease=LEASE))
    await backend.declare([s])
    model = Model(strategy)
    held: list[Delivery] = []
    seq = 0
    for _ in range(250):
        roll = rng.random()
        now = clock.now()
        if roll < 0.25:
            batch = []
            for _ in range(rng.randint(1, 3)):
                seq += 1
                e = Envelope(
                    "t",
                    {"seq": seq},
                    "trace",
                    group=rng.choice(["A", "B", "C", None]),
                    priority=rng.choice([0, 1, 5]),
                )
                model.messages[e.id] = Modelled(e.id, seq, e.group, e.priority)
                batch.append(e)
            await backend.publish(batch)
        elif roll < 0.5:
            max_count = rng.choice([1, 2, 100])
            allowed = model.receivable(now)
            got = await receive_now(backend, s, max_count)
            ids = [d.envelope.id for d in got]
            if strategy == "priority":
                assert ids == [m.id for m in allowed[:max_count]]
            else:  # which ones, when not all fit, is only "roughly publish order"
                assert len(ids) == min(max_count, len(allowed))
                assert set(ids) <= {m.id for m in allowed}
            for d in got:
                m = model.messages[d.envelope.id]
                m.attempts += 1
                assert d.attempt == m.attempts, "attempt counts every earlier delivery"
                m.state, m.receipt, m.until = "leased", d.receipt, now + LEASE
                held.append(d)
        elif roll < 0.8 and held:
            d = held.pop(rng.randrange(len(held)))
            m = model.holds(d, now)  # None: a stale delivery, whose settling is a no-op
            action = rng.choice(["ack", "ack", "retry", "bury"])
            if action == "ack":
                await backend.ack([d])
                if m:
                    m.state = "done"
            elif action == "retry":
                delay = rng.choice([0, 2, 7])
                await backend.retry(d, delay=delay, error="boom")
                if m:
                    m.state, m.until = "delayed", now + delay
            else:
                letter = await backend.bury(d, error="dead")
                assert bool(letter.id) == bool(m)
                if m:
                    m.state = "done"
        else:
            mock_clock.jump(rng.choice([1, 3, 11]))
        assert (await backend.depth())[s.key] == attrs.evolve(
            model.depth(clock.now()), dead=(await backend.depth())[s.key].dead
        )
    # Everything still pending is eventually delivered.
    mock_clock.jump(1000)
    while got := await receive_now(backend, s, 100):
        await backend.ack(got)
        for d in got:
            model.messages[d.envelope.id].state = "done"
    assert all(m.state == "done" for m in model.messages.values())
    assert backend.pending_total() == 0
