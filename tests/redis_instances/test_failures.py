"""Failures under 3 real `motet start` processes on one redis-server: kill -9 of an instance
mid-load (its messages are reclaimed by the others after the lease) and a SIGKILL of Redis
itself mid-run (instances ride out the restart; nothing acknowledged is lost)."""

from __future__ import annotations

import time
from collections import Counter

from ..crash._motet import wait_until
from ._cluster import Publishing, StartCluster, spread
from ._steps import RECLAIM, RESTART

VICTIM = 1  # the instance killed; the others are the survivors


def test_kill_9_of_one_instance_mid_load_loses_nothing(cluster: StartCluster) -> None:
    # Lease 2 s: the victim's deliveries come back to the survivors about 2 s after the kill.
    app = cluster(RECLAIM, toml='[queues."slow"]\nlease = 2\n')
    ids = [f"s{i}" for i in range(150)]
    assert app.post_all("slow", [{"id": i} for i in ids]) == ids
    victim = app.pids[VICTIM]

    def in_flight(pid: int) -> set[str]:
        """Ids whose handler `pid` started and has not finished."""
        started = {r["id"] for r in app.handled("start") if r["pid"] == pid}
        return started - {r["id"] for r in app.handled("done") if r["pid"] == pid}

    def mid_load() -> bool:
        """A fifth of the work done, some of it by the victim, which is in the middle of more
        (on a loaded machine the other two can do the first fifth alone)."""
        done = app.handled("done")
        return len(done) >= 30 and any(r["pid"] == victim for r in done) and bool(in_flight(victim))

    wait_until(mid_load, "the victim to be busy")
    app.instances[VICTIM].kill9()
    lost_with_victim = in_flight(victim)  # final: a dead process records nothing more
    touched_by_victim = {r["id"] for r in app.handled("start") if r["pid"] == victim}

    app.wait_handled("done", ids)
    assert app.alive() == [True, False, True], app.output()
    assert app.stop() == [0, 0], app.output()

    done = app.handled("done")
    counts = Counter(r["id"] for r in done)
    assert set(counts) == set(ids)  # 0 lost
    assert lost_with_victim, "the kill came when the victim was running nothing"
    survivors = {pid for pid in app.pids if pid != victim}
    for message_id in lost_with_victim:
        # Finished by a survivor, as a new attempt (the lost delivery counted).
        finished = [r for r in done if r["id"] == message_id and r["pid"] in survivors]
        assert finished and min(r["attempt"] for r in finished) >= 2, (message_id, finished)
    duplicated = {i for i, n in counts.items() if n > 1}
    # At least once: only what the victim had taken may run twice.
    assert duplicated <= touched_by_victim, sorted(duplicated - touched_by_victim)
    assert len(spread(done)) == 3, spread(done)


def test_a_redis_crash_and_restart_mid_run_loses_nothing_acknowledged(
    cluster: StartCluster,
) -> None:
    # The default 30 s lease: a receive whose reply died with Redis is retried with its op id
    # and gets its messages back (test_reply_lost.py), so nothing waits for a lease to end.
    app = cluster(RESTART)
    server = app.server
    # Acknowledged by `motet emit` (a separate process; run before the flow starts, as it
    # is slow to start while 3 busy instances share 2 cores).
    app.emit("flow", {"id": "cli-before"})
    with Publishing(app, "flow", "p") as flow:
        wait_until(lambda: len(app.handled("flow")) >= 50, "messages to flow")
        server.kill()  # SIGKILL: only what was fsynced to the AOF survives
        acknowledged_before = [*flow.snapshot(), "cli-before"]
        time.sleep(1.0)  # the outage (requests meanwhile wait for Redis or fail)
        server.start()  # same port, AOF replayed
        after_restart = len(flow.snapshot())
        handled_before_restart = len(app.handled("flow"))
        wait_until(
            lambda: len(flow.snapshot()) >= after_restart + 100,
            "100 more messages accepted after the restart",
        )

    # A request during the outage waited for Redis (the backend retries with backoff)
    # instead of failing.
    assert flow.refused == [], flow.refused
    app.wait_handled("flow", acknowledged_before)  # the promise: none of these lost
    app.wait_handled("flow", flow.accepted)
    assert app.alive() == [True, True, True], app.output()
    assert app.stop() == [0, 0, 0], app.output()

    # Nothing came back through an expired lease: no handler failed, and every delivery in
    # flight at the crash was acked or handed out again (same attempt) once Redis was back.
    retried = [r for r in app.handled("flow") if r["attempt"] != 1]
    assert retried == [], retried
    late = app.handled("flow")[handled_before_restart:]
    assert len(spread(late)) == 3, f"not every instance consumed after the restart: {spread(late)}"
    # Every instance answered 2xx after the restart (post n goes to instance n % 3).
    answered = Counter(int(i[1:]) % 3 for i in flow.accepted[after_restart:])
    assert set(answered) == {0, 1, 2}, answered
