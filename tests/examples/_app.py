"""Helpers for the example app's tests: load `steps/` once, open a test runtime on all of it
or on some example folders, with the project's motet.toml."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from motet.project import load_project
from motet.steps import Step, load_steps
from motet.testing import HttpResult, TestRuntime, open_test_runtime

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS_DIR = REPO_ROOT / "steps"
# A Monday, 07:00 UTC: an hour before the first daily feeding reminder.
START = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)


@functools.cache
def all_steps() -> tuple[Step, ...]:
    return tuple(load_steps(STEPS_DIR))


def example_steps(*folders: str) -> list[Step]:
    """The steps of some example folders (`"pet_store"`, `"messages"`, ...); all without any."""
    steps = all_steps()
    if not folders:
        return list(steps)
    unknown = set(folders) - {p.name for p in STEPS_DIR.iterdir() if p.is_dir()}
    assert not unknown, f"no such example folder: {sorted(unknown)}"
    return [
        s for s in steps if s.file is not None and s.file.relative_to(STEPS_DIR).parts[0] in folders
    ]


@asynccontextmanager
async def open_app(
    *folders: str, start: datetime = START, only: Collection[str] = ()
) -> AsyncIterator[TestRuntime]:
    """A test runtime on the example folders (all without any), or `only` the named steps
    of them, with the project's motet.toml."""
    steps = example_steps(*folders)
    if only:
        steps = [s for s in steps if s.name in only]
        assert {s.name for s in steps} == set(only), f"no such steps: {only}"
    async with open_test_runtime(steps, start=start, project=load_project(REPO_ROOT)) as app:
        yield app


def problem_errors(result: HttpResult) -> dict[str, str]:
    """A 400 problem document's per-field errors as {path: detail}."""
    assert result.headers["content-type"].startswith("application/problem+json"), result.text
    return {e["path"]: e["detail"] for e in result.json.get("errors", [])}


def fields_of(app: TestRuntime, step: str, message: str) -> list[dict[str, Any]]:
    """The structured fields of every log line `message` of `step`, in order."""
    return [dict(r.fields) for r in app.logs if r.step == step and r.message == message]


def at(app: TestRuntime, record_time: float) -> datetime:
    """A log record's time as a UTC datetime."""
    return datetime.fromtimestamp(record_time, UTC)
