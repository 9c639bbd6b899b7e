"""The pytest plugin (entry point `motet`): a fixture that opens the project's app.

    async def test_pets(motet_app):           # steps/ of the rootdir, memory backend,
        r = await motet_app.http.post(...)    # virtual clock anchored at 2026-01-01 UTC

Mark a test `@pytest.mark.motet(steps="other/steps", start="2026-03-29T00:00:00+00:00")`
to change the folder or the anchor. The fixture runs under pytest-trio's autojump clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ._harness import TestRuntime, open_test_runtime


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "motet(steps=..., start=...): configure the motet_app fixture")


@pytest.fixture
async def motet_app(request: pytest.FixtureRequest, autojump_clock: Any
                    ) -> AsyncIterator[TestRuntime]:
    marker = request.node.get_closest_marker("motet")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    steps = options.pop("steps", "steps")
    start = options.pop("start", None)
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    root = Path(str(request.config.rootpath))
    async with open_test_runtime(steps, start=start, root=root, **options) as app:
        yield app
