"""`ctx.logger.info("msg", value)` logs any JSON value (Motia's second argument): a dict's
keys become fields, anything else sits under `data`; a log call never fails the handler."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from motet import queue
from motet._logging import LogHub, stream_sink
from motet.steps import load_step
from motet.testing import open_test_runtime


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def test_any_json_value_is_logged_and_nothing_fails(autojump_clock: Any) -> None:
    async def handler(data: Any, ctx: Any) -> None:
        ctx.logger.info("a dict", {"k": 1})
        ctx.logger.info("a list", [1, "two", {"three": 3}])
        ctx.logger.warn("a string", "hello")
        ctx.logger.error("a number", 4.5)
        ctx.logger.warning("a bool", False)
        ctx.logger.info("both", [1], extra_field="x")
        ctx.logger.info("an object", object())
        ctx.logger.info("a dataclass", Point(1, 2))
        ctx.logger.info("unprintable", {"v": Unprintable()})
        cycle: list[Any] = []
        cycle.append(cycle)
        ctx.logger.info("a cycle", cycle)
        ctx.logger.info("nan", float("nan"))
        ctx.logger.info(42)  # not even a string message

    step = load_step({"name": "Logs", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
        fields = {r.message: dict(r.fields) for r in app.logs_of("Logs")}
    assert fields["a dict"] == {"k": 1}
    assert fields["a list"] == {"data": [1, "two", {"three": 3}]}
    assert fields["a string"] == {"data": "hello"}
    assert fields["a number"] == {"data": 4.5}
    assert fields["a bool"] == {"data": False}
    assert fields["both"] == {"data": [1], "extra_field": "x"}
    assert fields["an object"]["data"].startswith("<object object at")
    assert fields["a dataclass"] == {"data": {"x": 1, "y": 2}}
    assert fields["unprintable"]["v"] == "<Unprintable: repr failed: RuntimeError>"
    assert isinstance(fields["a cycle"]["data"], list)  # cut at a depth, as a repr
    assert fields["nan"] == {"data": "nan"}
    assert "42" in fields


def test_a_sink_that_raises_does_not_fail_the_call(capsys: Any) -> None:
    hub = LogHub(lambda: 0.0)

    def broken(record: Any) -> None:
        raise OSError("disk gone")

    hub.add_sink(broken)
    hub.logger(step="S").info("lost", [1])
    assert "a log line was dropped (OSError: disk gone)" in capsys.readouterr().err


def test_json_lines_carry_non_dict_values_under_data() -> None:
    out = io.StringIO()
    hub = LogHub(lambda: 0.0)
    hub.add_sink(stream_sink(out, fmt="json"))
    hub.logger(step="S").info("items", ["a", "b"])
    assert '"data": ["a", "b"]' in out.getvalue()


async def test_sync_handlers_log_any_value_too(autojump_clock: Any) -> None:
    def handler(data: Any, ctx: Any) -> None:
        ctx.logger.info("from a thread", ["x"])
        try:
            raise ValueError("boom")
        except ValueError:
            ctx.logger.error("caught", exc_info=True)

    step = load_step({"name": "Sync", "triggers": [queue("t")]}, handler)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {})
        await app.settle(fail_fast=True)
        records = {r.message: r for r in app.logs_of("Sync")}
    assert dict(records["from a thread"].fields) == {"data": ["x"]}
    assert "ValueError: boom" in (records["caught"].traceback or "")
