"""motet.testing as users meet it: the pytest plugin's `motet_app` and the harness API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from motet import HandlerError, MotetError, queue
from motet.backends import MemoryBackend
from motet.steps import load_step
from motet.testing import TestRuntime, VirtualTimeRequired, open_test_runtime


async def test_motet_app_runs_the_rootdirs_steps(
    motet_app: TestRuntime, autojump_clock: Any
) -> None:
    response = await motet_app.http.post("/pets", json={"name": "Rex", "breed": "Poodle", "age": 3})
    assert response.status == 200
    await motet_app.settle(fail_fast=True)
    assert motet_app.messages("pet-created")[0]["name"] == "Rex"
    assert motet_app.now().date() == datetime(2026, 1, 1, tzinfo=UTC).date()


def test_motet_app_without_a_mock_clock_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.mkdir("steps")
    pytester.makepyfile(
        test_user="""
        async def test_forgot_the_clock(motet_app):
            pass
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*add `autojump_clock` to the test's arguments*"])


@pytest.mark.motet(start="2026-03-02T07:59:00+00:00")
async def test_the_motet_marker_anchors_the_clock(
    motet_app: TestRuntime, autojump_clock: Any
) -> None:
    await motet_app.advance(timedelta(minutes=2))
    await motet_app.settle(fail_fast=True)
    assert "Starting daily feeding reminder job" in motet_app.log_messages("DailyFeedingReminder")


async def test_settle_fail_fast_reports_each_failure_once(autojump_clock: Any) -> None:
    async def broken(data: Any, ctx: Any) -> None:
        raise RuntimeError(f"bad {data['n']}")

    step = load_step({"name": "B", "triggers": [queue("t", max_retries=0)]}, broken)
    async with open_test_runtime([step]) as app:
        await app.emit("t", {"n": 1})
        with pytest.raises(HandlerError, match="bad 1"):
            await app.settle(fail_fast=True)
        await app.settle(fail_fast=True)  # already reported: nothing new
        await app.emit("t", {"n": 2})
        await app.settle()  # without fail_fast the failure is left to dead letters
        await app.settle(fail_fast=True)
        assert len(await app.dead_letters("B")) == 2
        assert len(app.failures) == 2


async def test_a_bad_steps_folder_is_a_clear_error(autojump_clock: Any, tmp_path: Any) -> None:
    from motet import StepDefinitionError

    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "bad_step.py").write_text(
        "config = {'type': 'event', 'name': 'Bad', 'subscribes': ['x'], 'retries': 2}\n"
        "async def handler(data, ctx): pass\n"
    )
    with pytest.raises(StepDefinitionError) as info:
        async with open_test_runtime("steps", root=tmp_path):
            pass
    assert "bad_step.py" in str(info.value) and "retries" in str(info.value)


async def test_a_threaded_backend_under_autojump_is_refused_with_the_reason(
    autojump_clock: Any, tmp_path: Any
) -> None:
    from motet.backends import backend_from_url

    backend = backend_from_url(f"sqlite:///{tmp_path}/motet.db", root=tmp_path)
    with pytest.raises(ValueError, match="virtual time leaps"):
        async with open_test_runtime([], backend=backend):
            pass


# Each of these runs on trio's real clock (no clock fixture), as a user's test that forgot
# `autojump_clock` does. The fail_after is only a net: before the guard, advance() waited
# a real month and open_test_runtime() ran on, so the tests would fail instead of hanging.


async def test_open_test_runtime_on_real_time_fails_at_once_naming_the_fix() -> None:
    with trio.fail_after(10), pytest.raises(VirtualTimeRequired) as info:
        async with open_test_runtime([]):
            pass
    assert "open_test_runtime()" in str(info.value)
    assert "add `autojump_clock` to the test's arguments" in str(info.value)


@pytest.mark.parametrize("drive", ["advance", "run_until"])
async def test_advance_on_real_time_fails_at_once_naming_the_fix(drive: str) -> None:
    # An explicit backend may run on real time (SQLite and Redis must); letting virtual time
    # pass still needs the MockClock.
    async with open_test_runtime([], backend=MemoryBackend()) as app:
        with trio.fail_after(10), pytest.raises(VirtualTimeRequired) as info:
            if drive == "advance":
                await app.advance(timedelta(days=31))
            else:
                await app.run_until(app.now() + timedelta(days=31))
    assert f"TestRuntime.{drive}()" in str(info.value)
    assert "autojump_clock" in str(info.value)
    assert isinstance(info.value, MotetError)


def test_a_user_test_without_the_clock_fails_with_the_motet_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(
        test_user="""
        from datetime import timedelta
        import trio
        from motet.testing import open_test_runtime

        async def test_a_month():
            with trio.fail_after(10):  # a net for the code before the guard
                async with open_test_runtime([]) as app:
                    await app.advance(timedelta(days=31))
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*VirtualTimeRequired*add `autojump_clock`*"])
