"""Throttling as operators see it: /metrics series per rate-limited queue, and the queues
endpoint the console draws its throttled marker from."""

from __future__ import annotations

from typing import Any

import trio

from ._app import open_observed, queue_step
from .test_metrics import parse


def steps() -> list[Any]:
    async def slow(data: Any, ctx: Any) -> None:
        pass

    async def free(data: Any, ctx: Any) -> None:
        pass

    return [
        queue_step("Slow", "job", slow, options={"rate_limit": "1/m"}),
        queue_step("Free", "job", free),
    ]


async def test_metrics_and_queues_show_a_throttled_queue(autojump_clock: Any) -> None:
    async with open_observed(steps()) as app:
        for n in range(3):
            await app.runtime.emit("job", {"n": n})
        await trio.sleep(1)  # one started; two wait for tokens a minute apart
        during = parse((await app.http.get("/metrics")).text)
        queues = (await app.http.get("/_motet/queues")).json()["queues"]
        await app.settle()
        after = parse((await app.http.get("/metrics")).text)

    labels = '{step="Slow",topic="job"}'
    assert during[f"motet_rate_limit_per_second{labels}"] == 1 / 60
    assert during[f"motet_rate_limit_throttled{labels}"] == 1
    assert during[f"motet_rate_limit_waits_total{labels}"] == 1
    assert during['motet_queue_depth{step="Slow",topic="job",state="ready"}'] == 2
    # An unlimited queue has no rate-limit series at all.
    assert not [k for k in during if k.startswith("motet_rate_limit") and '"Free"' in k]
    slow = next(q for q in queues if q["step"] == "Slow")
    free = next(q for q in queues if q["step"] == "Free")
    assert (slow["options"]["rate_limit"], slow["throttled"], slow["throttled_waits"]) == (
        "1/m",
        True,
        1,
    )
    assert (free["options"]["rate_limit"], free["throttled"]) == (None, False)
    assert after[f"motet_rate_limit_throttled{labels}"] == 0
    assert after[f"motet_rate_limit_waits_total{labels}"] == 2
    assert 119 <= after[f"motet_rate_limit_wait_seconds_total{labels}"] <= 120
