"""Queues across 3 real `motet start` processes on one redis-server: fan-out to steps with
competing instances, a poison message buried while others flow, fifo order per group."""

from __future__ import annotations

import threading
from collections import Counter

from ..crash._motet import wait_until
from ._cluster import Publishing, StartCluster, spread
from ._steps import FAN_OUT, FIFO, POISON


def test_each_step_gets_each_message_once_and_instances_share_the_work(
    cluster: StartCluster,
) -> None:
    app = cluster(FAN_OUT)
    ids = [f"m{i}" for i in range(300)]
    accepted = app.post_all("fan", [{"id": i} for i in ids])
    assert accepted == ids  # every POST answered 202
    for step in ("FanA", "FanB"):
        app.wait_handled("fan", ids, step=step)
    assert app.stop() == [0, 0, 0], app.output()  # graceful: nothing left in flight

    for step in ("FanA", "FanB"):
        work = [r for r in app.handled("fan") if r["step"] == step]
        counts = Counter(r["id"] for r in work)
        assert set(counts) == set(ids), step
        assert [i for i, n in counts.items() if n > 1] == [], f"{step} handled twice"
        assert {r["attempt"] for r in work} == {1}, step
        by_pid = spread(work)
        assert set(by_pid) <= set(app.pids), by_pid
        assert len(by_pid) >= 2, f"{step} ran on one instance only: {by_pid}"


def test_a_poison_message_ends_in_dead_letters_while_others_flow(cluster: StartCluster) -> None:
    app = cluster(POISON, toml='[queues."picky"]\nmax_retries = 2\nretry_delay = 300\n')
    poison = {"id": "poison", "poison": True}

    def attempts() -> list[int]:
        return [r["attempt"] for r in app.handled("picky") if r["id"] == "poison"]

    with Publishing(app, "picky", "g") as good:
        wait_until(lambda: len(app.handled("picky")) >= 20, "the good messages to flow")
        assert app.post("picky", poison, instance=1)
        wait_until(lambda: len(attempts()) >= 3, "three attempts of the poison message")
    assert good.refused == []

    def letters() -> list[dict[str, object]]:
        found = app.dead_letters()  # `motet dlq list --json --backend redis://...`
        return found if any(d["data"] == poison for d in found) else []

    buried = wait_until(letters, "the poison message in `motet dlq list`", interval=0.2)
    app.wait_handled("picky", good.accepted)
    assert app.stop() == [0, 0, 0], app.output()

    assert len(buried) == 1, buried  # nothing else was buried
    [letter] = buried
    assert letter["subscription"] == "Picky@picky", letter
    assert letter["topic"] == "picky", letter
    assert letter["attempts"] == 3, letter  # 1 + max_retries
    assert "poison pill poison" in str(letter["error"]), letter
    assert attempts() == [1, 2, 3]  # never handled again once buried
    handlings = app.handled("picky")
    first, last = (
        i for i, r in enumerate(handlings) if r["id"] == "poison" and r["attempt"] in (1, 3)
    )
    flowing = [r for r in handlings[first:last] if r["id"] != "poison"]
    assert len(flowing) >= 10, f"only {len(flowing)} messages handled during its retries"
    good_counts = Counter(r["id"] for r in handlings if r["id"] != "poison")
    assert set(good_counts) == set(good.accepted) and set(good_counts.values()) == {1}


GROUPS = ("g0", "g1", "g2")
PER_GROUP = 30
FAILS_ONCE = ("g1", 10)  # its first attempt raises; g1's later messages must wait for it


def test_fifo_keeps_the_publish_order_of_each_group_across_instances(cluster: StartCluster) -> None:
    app = cluster(FIFO, toml='[queues."ordered"]\nstrategy = "fifo"\nretry_delay = 100\n')
    refused: list[tuple[str, int]] = []

    def publish_group(g: int) -> None:
        # One message at a time: the 202 means it is in Redis, so the publish order is the
        # order of this loop, although consecutive messages go to different instances.
        for seq in range(PER_GROUP):
            body = {
                "id": f"{GROUPS[g]}-{seq}",
                "group": GROUPS[g],
                "seq": seq,
                "fail_once": (GROUPS[g], seq) == FAILS_ONCE,
            }
            if not app.post("ordered", body, instance=(seq + g) % 3):
                refused.append((GROUPS[g], seq))

    publishers = [threading.Thread(target=publish_group, args=(g,)) for g in range(3)]
    for publisher in publishers:
        publisher.start()
    for publisher in publishers:
        publisher.join()
    assert refused == []
    app.wait_handled("ordered", [f"{g}-{s}" for g in GROUPS for s in range(PER_GROUP)])
    assert app.stop() == [0, 0, 0], app.output()

    handled = app.handled("ordered")
    for group in GROUPS:
        order = [r["seq"] for r in handled if r["group"] == group]
        assert order == list(range(PER_GROUP)), f"group {group} handled as {order}"
        assert {r["group_of_delivery"] for r in handled if r["group"] == group} == {group}
    assert [(r["group"], r["seq"]) for r in app.handled("ordered-failed")] == [FAILS_ONCE]
    assert len(spread(handled)) >= 2, f"one instance did everything: {spread(handled)}"
