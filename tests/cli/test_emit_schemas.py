"""`motet emit` checks data against a subscriber's input written the Motia way (a JSON Schema
dict, a pydantic model), as it does for class schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from motet.cli import main

from ._project import BASIC_STEPS, write_project

SHIP = """\
from pydantic import BaseModel

from motet import queue


class Placed(BaseModel):
    id: str
    qty: int


config = {{"name": "Ship", "triggers": [queue("order.placed", input={schema})]}}


async def handler(order, ctx):
    pass
"""


@pytest.mark.parametrize("schema", ["Placed.model_json_schema()", "Placed"])
def test_emit_refuses_data_its_subscriber_would_dead_letter(tmp_path: Path, schema: str) -> None:
    files = {**BASIC_STEPS, "steps/ship_step.py": SHIP.format(schema=schema)}
    root = write_project(tmp_path / "typed", files=files)
    result = CliRunner().invoke(
        main, ["--project", str(root), "emit", "order.placed", '{"id": "o1", "qty": "one"}']
    )
    assert result.exit_code == 2, result.output
    assert "does not match the input of step 'Ship'" in result.stderr
    assert "ship_step.py" in result.stderr and "@ $.qty" in result.stderr
    ok = CliRunner().invoke(
        main, ["--project", str(root), "emit", "order.placed", '{"id": "o1", "qty": 1}']
    )
    assert ok.exit_code == 0, ok.output
