"""Rate limits through the whole runtime: starts spaced by the limit under MockClock, one
bucket for every runtime on a backend, no limiter on an unlimited queue, and wrong values
refused where they are written."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import trio

from motet import ProjectConfigError, StepDefinitionError
from motet._envelope import RateLimit
from motet.backends import MemoryBackend
from motet.project import load_project
from motet.steps import load_step
from motet.steps._queue_options import parse_rate_limit
from motet.testing import open_test_runtime


def limited_step(name: str, starts: list[float], rate: Any, **options: Any) -> Any:
    async def handler(data: Any, ctx: Any) -> None:
        starts.append(trio.current_time())
        await trio.sleep(0.01)

    trigger = {"type": "queue", "topic": "jobs", "rate_limit": rate, **options}
    return load_step({"name": name, "triggers": [trigger]}, handler)


def most_in_any_window(starts: list[float], width: float) -> int:
    """The most starts inside any half-open window [t, t + width)."""
    ordered = sorted(starts)
    best, j = 0, 0
    for i, start in enumerate(ordered):
        while ordered[j] <= start - width + 1e-9:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_100_messages_at_10_per_second_take_10_virtual_seconds(
    autojump_clock: Any,
) -> None:
    starts: list[float] = []
    step = limited_step("Limited", starts, "10/s", concurrency=20)
    async with open_test_runtime([step]) as app:
        began = trio.current_time()
        for n in range(100):
            await app.emit("jobs", {"n": n})
        await app.settle(fail_fast=True)
        took = trio.current_time() - began
    assert len(starts) == 100
    # One token every 0.1 s, the first at once: the 100th starts at 9.9 s, ends at 9.91 s.
    assert starts[-1] - starts[0] == pytest.approx(9.9, abs=1e-4)
    assert 9.9 <= took <= 10.1
    assert most_in_any_window(starts, 1.0) == 10
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(0.1, abs=1e-4)


async def test_a_burst_lets_that_many_start_at_once_then_the_rate_holds(
    autojump_clock: Any,
) -> None:
    starts: list[float] = []
    step = limited_step("Bursty", starts, {"rate": "5/s", "burst": 5}, concurrency=10)
    async with open_test_runtime([step]) as app:
        began = trio.current_time()
        for n in range(15):
            await app.emit("jobs", {"n": n})
        await app.settle(fail_fast=True)
    offsets = [round(s - began, 6) for s in starts]
    assert offsets[:5] == [0.0] * 5
    assert offsets[5:] == pytest.approx([0.2 * k for k in range(1, 11)], abs=1e-4)


async def test_runtimes_on_one_backend_share_the_limit(autojump_clock: Any) -> None:
    backend = MemoryBackend()
    starts: dict[str, list[float]] = {"a": [], "b": []}
    async with (
        open_test_runtime([limited_step("W", starts["a"], "20/s")], backend=backend) as a,
        open_test_runtime([limited_step("W", starts["b"], "20/s")], backend=backend) as b,
    ):
        began = trio.current_time()
        for n in range(60):
            await (a if n % 2 else b).emit("jobs", {"n": n})
        await a.settle(fail_fast=True)
        await b.settle(fail_fast=True)
    together = sorted(starts["a"] + starts["b"])
    assert len(together) == 60 and starts["a"] and starts["b"]
    assert together[-1] - began == pytest.approx(59 / 20, abs=1e-4)
    assert most_in_any_window(together, 1.0) == 20


async def test_an_unlimited_queue_has_no_limiter(autojump_clock: Any) -> None:
    starts: list[float] = []

    async def handler(data: Any, ctx: Any) -> None:
        starts.append(trio.current_time())

    step = load_step({"name": "Free", "triggers": [{"type": "queue", "topic": "jobs"}]}, handler)
    async with open_test_runtime([step]) as app:
        assert [actor.gate for actor in app.runtime.actors] == [None]
        assert app.runtime.view.throttling() == {}
        for n in range(50):
            await app.emit("jobs", {"n": n})
        await app.settle(fail_fast=True)
    assert max(starts) - min(starts) == 0  # all at once, in virtual time


async def test_the_view_tells_throttling(autojump_clock: Any) -> None:
    starts: list[float] = []
    step = limited_step("Slow", starts, "1/m")
    async with open_test_runtime([step]) as app:
        for n in range(3):
            await app.emit("jobs", {"n": n})
        await trio.sleep(1)
        [(key, now)] = app.runtime.view.throttling().items()
        assert key == "Slow@jobs"
        assert (now.limit, now.throttled, now.waits) == (RateLimit(1, 60.0), True, 1)
        await app.settle(fail_fast=True)
        after = app.runtime.view.throttling()["Slow@jobs"]
    assert len(starts) == 3
    assert (after.throttled, after.waits) == (False, 2)
    assert after.waited == pytest.approx(120 - 0.01, abs=0.02)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("50/s", RateLimit(50, 1.0)),
        ("1000/m", RateLimit(1000, 60.0)),
        ("10/h", RateLimit(10, 3600.0)),
        (" 3 / minute ", RateLimit(3, 60.0)),
        ({"rate": "50/s", "burst": 100}, RateLimit(50, 1.0, 100)),
    ],
)
def test_rate_limits_parse(text: Any, limit: RateLimit) -> None:
    assert parse_rate_limit(text) == limit


@pytest.mark.parametrize(
    "value",
    ["50/x", "0/s", "-5/s", "5", "/s", "1.5/s", "ten/s", 50, 2.5, True, None, ["5/s"],
     {"rate": "5/s", "burst": 0}, {"rate": "5/s", "burst": "3"}, {"burst": 3},
     {"rate": "5/s", "per": "s"}],
)  # fmt: skip
def test_wrong_rate_limits_name_the_value_and_the_forms(value: Any) -> None:
    with pytest.raises(ValueError, match=r"50/s") as info:
        parse_rate_limit(value)
    message = str(info.value)
    assert "burst" in message
    if not isinstance(value, dict):
        assert repr(value) in message


@pytest.mark.parametrize("value", ["50/x", "0/s", "-5/s", 50])
def test_a_step_with_a_wrong_rate_limit_fails_to_load(value: Any) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        pass

    config = {"name": "Bad", "triggers": [{"type": "queue", "topic": "t", "rate_limit": value}]}
    with pytest.raises(StepDefinitionError, match="rate_limit") as info:
        load_step(config, handler)
    assert repr(value) in str(info.value)


def test_motia_camel_case_and_the_0x_form_are_read() -> None:
    async def handler(data: Any, ctx: Any) -> None:
        pass

    step = load_step(
        {"type": "event", "name": "Old", "subscribes": ["t"], "rateLimit": "30/m"}, handler
    )
    [trigger] = step.triggers
    assert trigger.options.rate_limit == RateLimit(30, 60.0)  # type: ignore[union-attr]
    with pytest.raises(StepDefinitionError, match="given twice"):
        load_step(
            {"type": "event", "name": "Two", "subscribes": ["t"], "rateLimit": "30/m",
             "rate_limit": "1/s"},
            handler,
        )  # fmt: skip


def test_project_config_sets_rate_limits_per_topic(tmp_path: Path) -> None:
    (tmp_path / "motet.toml").write_text(
        '[queue]\nrate_limit = "100/s"\n\n'
        '[queues."jobs"]\nrateLimit = { rate = "5/m", burst = 5 }\n'
    )
    project = load_project(tmp_path)
    assert project.queue.rate_limit == RateLimit(100, 1.0)
    assert project.queues["jobs"].rate_limit == RateLimit(5, 60.0, 5)


def test_project_config_refuses_a_wrong_rate_limit(tmp_path: Path) -> None:
    (tmp_path / "motet.toml").write_text('[queues."jobs"]\nrate_limit = "50/x"\n')
    with pytest.raises(ProjectConfigError, match=r"queues\.jobs\.rate_limit") as info:
        load_project(tmp_path)
    assert "'50/x'" in str(info.value) and '"10/h"' in str(info.value)


def test_rate_limits_print_as_written() -> None:
    assert [str(parse_rate_limit(x)) for x in ("50/s", "7/min", "2/hour")] == [
        "50/s",
        "7/m",
        "2/h",
    ]
    assert str(RateLimit(5, 1.0, 10)) == "5/s (burst 10)"
    assert math.isclose(RateLimit(10, 3600.0).per_second, 10 / 3600)
