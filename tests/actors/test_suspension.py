"""`on_first_suspension`: the hook runs once, only if the coroutine suspends, and the
wrapped coroutine sees the scheduler's sends and throws (cancellation) as it would bare."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from motet.actors._suspension import on_first_suspension


async def test_a_coroutine_that_never_suspends_never_calls_the_hook() -> None:
    calls: list[int] = []

    async def quick() -> int:
        return 7

    assert await on_first_suspension(quick(), lambda: calls.append(1)) == 7
    assert calls == []


async def test_the_hook_runs_once_before_the_first_suspension(autojump_clock: Any) -> None:
    seen: list[str] = []

    async def slow() -> str:
        seen.append("start")
        await trio.sleep(1)
        seen.append("middle")
        await trio.sleep(1)
        return "done"

    assert await on_first_suspension(slow(), lambda: seen.append("hook")) == "done"
    assert seen == ["start", "hook", "middle"]


async def test_errors_pass_through_before_and_after_suspending(autojump_clock: Any) -> None:
    async def fails(wait: bool) -> None:
        if wait:
            await trio.sleep(1)
        raise ValueError("boom")

    for wait in (False, True):
        with pytest.raises(ValueError, match="boom"):
            await on_first_suspension(fails(wait), lambda: None)


async def test_cancellation_reaches_the_wrapped_coroutine(autojump_clock: Any) -> None:
    cleaned: list[bool] = []

    async def waits() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(True)

    with trio.move_on_after(5) as scope:
        await on_first_suspension(waits(), lambda: None)
    assert scope.cancelled_caught and cleaned == [True]


async def test_a_hook_that_raises_closes_the_coroutine(autojump_clock: Any) -> None:
    closed: list[bool] = []

    async def waits() -> None:
        try:
            await trio.sleep(1)
        finally:
            closed.append(True)

    def hook() -> None:
        raise RuntimeError("hook")

    with pytest.raises(RuntimeError, match="hook"):
        await on_first_suspension(waits(), hook)
    assert closed == [True]
