"""Wrong inputs users will send, the restart window, and the public names."""

from __future__ import annotations

import math

import attrs
import pytest
import trio

import motet.supervision
from motet.supervision import ChildSpec, Supervisor, SupervisorOptions
from motet.supervision._spec import RestartWindow


async def _start(*, task_status: trio.TaskStatus[None]) -> None:
    task_status.started()


def test_every_public_name_is_importable_from_the_package() -> None:
    assert motet.supervision.__all__ == sorted(motet.supervision.__all__)
    for name in motet.supervision.__all__:
        assert getattr(motet.supervision, name) is not None


def test_child_spec_defaults_follow_otp() -> None:
    spec = ChildSpec("w", _start)
    assert (spec.restart, spec.shutdown) == ("permanent", 5.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.restart = "temporary"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"id": ""}, ValueError, "ChildSpec.id must be a non-empty string, got ''"),
        ({"id": 3}, ValueError, "ChildSpec.id must be a non-empty string, got 3"),
        ({"start": "worker"}, TypeError, "ChildSpec.start must be an async callable"),
        ({"restart": "always"}, ValueError, "ChildSpec.restart must be one of ['permanent', "),
        (
            {"shutdown": -1},
            ValueError,
            "ChildSpec.shutdown must be a number of seconds >= 0, got -1",
        ),
        ({"shutdown": "5"}, TypeError, "ChildSpec.shutdown must be a number of seconds"),
        ({"shutdown": math.nan}, ValueError, "ChildSpec.shutdown must be a number of seconds >= 0"),
        ({"shutdown": True}, TypeError, "ChildSpec.shutdown must be a number of seconds"),
    ],
)
def test_child_spec_rejects_wrong_values(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    fields: dict[str, object] = {"id": "w", "start": _start, **kwargs}
    with pytest.raises(error) as info:
        ChildSpec(**fields)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_child_spec_accepts_brutal_kill_and_infinity() -> None:
    assert ChildSpec("w", _start, shutdown=0).shutdown == 0
    assert ChildSpec("w", _start, shutdown=math.inf).shutdown == math.inf


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"strategy": "one-for-one"}, ValueError, "SupervisorOptions.strategy must be one of"),
        ({"intensity": -1}, ValueError, "SupervisorOptions.intensity must be an integer >= 0"),
        ({"intensity": 2.5}, TypeError, "SupervisorOptions.intensity must be an integer, got 2.5"),
        (
            {"period": 0},
            ValueError,
            "SupervisorOptions.period must be a number of seconds > 0, got 0",
        ),
        (
            {"backoff": -0.1},
            ValueError,
            "SupervisorOptions.backoff must be a finite number of seconds >= 0",
        ),
        (
            {"backoff": math.inf},
            ValueError,
            "SupervisorOptions.backoff must be a finite number of seconds >= 0",
        ),
        ({"name": ""}, ValueError, "SupervisorOptions.name must be a non-empty string"),
        ({"on_event": "log"}, TypeError, "'on_event' must be callable"),
    ],
)
def test_supervisor_options_reject_wrong_values(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match="^" + message.replace(".", r"\.")):
        SupervisorOptions(**kwargs)  # type: ignore[arg-type]


def test_supervisor_options_defaults() -> None:
    options = SupervisorOptions()
    assert (options.strategy, options.intensity, options.period, options.backoff) == (
        "one_for_one",
        3,
        5.0,
        0.0,
    )


def test_supervisor_rejects_duplicate_ids_and_non_specs() -> None:
    with pytest.raises(ValueError, match=r"unique, got duplicates \['a'\]"):
        Supervisor([ChildSpec("a", _start), ChildSpec("b", _start), ChildSpec("a", _start)])
    with pytest.raises(TypeError, match="children must be ChildSpec"):
        Supervisor([_start])  # type: ignore[list-item]


def test_restart_window_forgets_restarts_older_than_the_period() -> None:
    window = RestartWindow(5.0)
    assert [window.record(t) for t in (0.0, 1.0, 2.0, 4.9)] == [1, 2, 3, 4]
    assert window.record(5.0) == 4  # t=0 is now outside (0, 5]
    assert window.record(20.0) == 1


def test_restart_backoff_doubles_then_caps_and_never_overflows() -> None:
    backoff = SupervisorOptions(backoff=0.5, backoff_cap=3.0).restart_backoff
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert SupervisorOptions(backoff=1.0, backoff_cap=60.0).restart_backoff.delay(10_000) == 60.0
    assert SupervisorOptions().restart_backoff.delay(3) == 0.0
