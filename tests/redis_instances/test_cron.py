"""A 6-field every-second cron on 3 real `motet start` processes over one redis-server: each
instance runs its own clock actor, and the once-per-tick mark in Redis lets exactly one of
them publish each tick."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from ..crash._motet import DEADLINE, wait_until
from ._cluster import StartCluster, spread
from ._steps import CRON

TICKS = 60


def _seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_every_second_cron_fires_each_tick_exactly_once_across_3_instances(
    cluster: StartCluster,
) -> None:
    app = cluster(CRON)
    # Ticks scheduled from the moment all 3 clock actors run: their first fire times.
    all_up = len(app.handled("tick"))

    def counted() -> int:
        return len({r["scheduled"] for r in app.handled("tick")[all_up:]})

    wait_until(lambda: counted() >= TICKS + 1, f"{TICKS + 1} ticks", deadline=TICKS + DEADLINE)
    assert app.alive() == [True, True, True], app.output()
    # The window checked for gaps ends before the stop: a tick due while the instances shut
    # down may rightly never run.
    running = [_seconds(r["scheduled"]) for r in app.handled("tick")[all_up:]]
    first, last = min(running), max(running)
    assert app.stop() == [0, 0, 0], app.output()

    ticks = app.handled("tick")
    counts = Counter(r["scheduled"] for r in ticks)
    assert [s for s, n in counts.items() if n > 1] == [], "ticks fired more than once"
    seconds = {_seconds(s) for s in counts}
    assert last - first >= TICKS, (first, last)
    gaps = sorted(set(range(first, last + 1)) - seconds)
    assert gaps == [], f"{len(gaps)} seconds without a tick while all instances ran: {gaps}"
    # The instances compete for the tick messages too (each is a queue delivery).
    assert len(spread(ticks)) >= 2, spread(ticks)
