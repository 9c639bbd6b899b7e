"""The pytest plugin (entry point `motet`): a fixture that opens the project's app.

    async def test_pets(motet_app, autojump_clock):   # steps/ of the rootdir, memory
        r = await motet_app.http.post(...)            # backend, virtual clock anchored at
                                                      # 2026-01-01 UTC
Mark a test `@pytest.mark.motet(steps="other/steps", start="2026-03-29T00:00:00+00:00")`
to change the folder or the anchor. The test itself must take pytest-trio's `autojump_clock`
(or `mock_clock`): pytest-trio runs a test on a MockClock only when the test function takes
it as an argument, and without one `advance()` would wait in real time. The fixture checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ._harness import TestRuntime, open_test_runtime, require_mock_clock


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "motet(steps=..., start=...): configure the motet_app fixture"
    )


@pytest.fixture
async def motet_app(request: pytest.FixtureRequest) -> AsyncIterator[TestRuntime]:
    require_mock_clock(f"{request.node.name}: the motet_app fixture")
    marker = request.node.get_closest_marker("motet")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    steps = options.pop("steps", "steps")
    start = options.pop("start", None)
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    root = Path(str(request.config.rootpath))
    async with open_test_runtime(steps, start=start, root=root, **options) as app:
        yield app
