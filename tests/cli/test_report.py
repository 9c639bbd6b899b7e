"""The one line a failed command ends with names the cause (issue 11, item 9): when the
supervisor gives up, the line says what failed last (a full disk and its file), not only
that it gave up."""

from __future__ import annotations

import pytest

from motet._errors import BackendUnavailable, SupervisorGaveUp
from motet.cli._app import report


def test_a_supervisor_that_gave_up_names_the_last_failure_on_the_last_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cause = BackendUnavailable(
        "sqlite backend: cannot write to /data/app/motet.db: database or disk is full "
        "(SQLITE_FULL); the disk (or the configured size limit) is full"
    )
    gave_up = SupervisorGaveUp("steps", "Work@work", 5, 10.0)
    gave_up.__cause__ = cause
    report(ExceptionGroup("runtime", [gave_up]))
    last = capsys.readouterr().err.splitlines()[-1]
    assert "gave up" in last and "/data/app/motet.db" in last and "SQLITE_FULL" in last
