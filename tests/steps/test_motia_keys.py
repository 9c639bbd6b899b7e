"""Motia 1.0 Python step keys motet does not use load, and each is recorded, one human line
per item, in `Step.unhonoured` (which `motet start` lists); typos are still load errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from motet import http, queue
from motet._errors import StepDefinitionError
from motet.steps import load_step


async def handler(data: Any, ctx: Any) -> None:
    pass


def test_ignored_step_and_trigger_keys_load_and_are_recorded() -> None:
    step = load_step(
        {
            "name": "Process",
            "triggers": [
                queue("orders", infrastructure={"handler": {"ram": 512, "timeout": 10}}),
                {
                    "type": "http",
                    "method": "GET",
                    "path": "/orders",
                    "queryParams": [{"name": "page", "description": "page number"}],
                },
            ],
            "includeFiles": ["./prompt.txt"],
            "infrastructure": {"queue": {"type": "fifo"}},
            "virtualEnqueues": ["audit"],
        },
        handler,
    )
    assert step.unhonoured == (
        "includeFiles is not used: motet runs step files where they are; "
        "files they read are read from disk",
        "infrastructure is not used: motet does not provision "
        "infrastructure: handlers run in motet's own processes; set timeout, strategy, "
        "max_retries and lease as queue options instead",
        "infrastructure on the queue trigger 'orders' is not used: motet "
        "does not provision infrastructure: handlers run in motet's own processes; set "
        "timeout, strategy, max_retries and lease as queue options instead",
        "queryParams on the http trigger GET /orders is not used: "
        "documentation only; motet validates query parameters with `query` (a schema)",
    )
    assert step.virtual_emits == ("audit",)


def test_the_start_report_names_the_step_and_its_file(tmp_path: Path) -> None:
    from motet.project import ProjectConfig
    from motet.project._report import start_report
    from motet.steps._config import step_from_config

    file = tmp_path / "steps" / "x_step.py"
    config = {"name": "X", "type": "event", "subscribes": ["t"], "include_files": ["a"]}
    step = step_from_config(config, handler, file=file)
    assert start_report(ProjectConfig(), [step]) == [
        "not used: step 'X' (x_step.py): include_files is not used: motet runs step files "
        "where they are; files they read are read from disk",
    ]


def test_a_step_without_motia_extras_has_nothing_unhonoured() -> None:
    step = load_step({"name": "Plain", "triggers": [http("GET", "/p")]}, handler)
    assert step.unhonoured == () and step.handlers is None


def test_typos_are_still_load_errors() -> None:
    with pytest.raises(StepDefinitionError, match="unknown key 'includeFile'"):
        load_step({"name": "T", "triggers": [queue("t")], "includeFile": ["a"]}, handler)
    with pytest.raises(StepDefinitionError, match="unknown key 'infrastucture'"):
        load_step(
            {"name": "T", "triggers": [{"type": "queue", "topic": "t", "infrastucture": {}}]},
            handler,
        )


def test_the_handlers_key_is_checked() -> None:
    step = load_step({"name": "A", "triggers": [queue("t")], "handlers": "asyncio"}, handler)
    assert step.handlers == "asyncio"
    with pytest.raises(StepDefinitionError, match="expected one of \\['trio', 'asyncio'\\]") as e:
        load_step({"name": "A", "triggers": [queue("t")], "handlers": "uvloop"}, handler)
    assert e.value.field == "handlers"
