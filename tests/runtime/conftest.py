"""After the run: how many examples the runtime model test (test_model.py) went through."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    model = sys.modules.get(__package__ + ".test_model") if __package__ else None
    if model is None or not any(model.EXAMPLES.values()):
        return
    terminalreporter.write_line(model.summary())
