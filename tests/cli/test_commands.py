"""The commands that do not serve: steps, graph, emit, dlq, state, with click's CliRunner
(in this process) against a project's real sqlite file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from click.testing import CliRunner, Result

from motet.backends import backend_from_url
from motet.cli import main
from motet.project import load_project
from motet.testing import open_test_runtime

from ._project import BASIC_STEPS, write_project


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "app", files=BASIC_STEPS)


def motet(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--project", str(root), *args])


def run_the_steps(root: Path) -> list[Any]:
    """What `motet start` would do with the queued messages: run the project's steps on its
    sqlite file until nothing is queued or running; returns the dead letters. On real time:
    under an autojump MockClock virtual time leaps while SQLite works in its thread, and
    leases expire that never would (the step retries after 10 ms, so this stays quick)."""

    async def work() -> list[Any]:
        backend = backend_from_url("sqlite", root=root)
        async with open_test_runtime(
            "steps", root=root, backend=backend, project=load_project(root)
        ) as app:
            await app.settle()
            return list(await app.runtime.backend.dead_letters(None, limit=100))

    return trio.run(work)


def test_steps_is_a_table_of_steps_triggers_and_topics(root: Path) -> None:
    result = motet(root, "steps")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()  # warnings, if any, are on stderr
    assert lines[0].split() == ["STEP", "TRIGGERS", "EMITS", "FLOWS", "FILE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"AlwaysFails", "GetOrder", "PlaceOrder", "Ship"}
    assert "http POST /orders" in rows["PlaceOrder"] and "order.placed" in rows["PlaceOrder"]
    assert "queue order.placed" in rows["Ship"] and "ship_step.py" in rows["Ship"]


def test_graph_is_mermaid_with_an_edge_per_topic(root: Path) -> None:
    result = motet(root, "graph")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    subgraph flow_orders["orders"]' in lines
    assert '    PlaceOrder -- "order.placed" --> Ship' in lines


def test_emit_then_the_steps_handle_it(root: Path) -> None:
    result = motet(root, "emit", "order.placed", '{"id": "o1", "qty": 1}')
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) == 32  # the message id
    run_the_steps(root)
    got = motet(root, "state", "get", "done", "o1")
    assert got.exit_code == 0 and json.loads(got.output) == {"shipped": True}
    listed = motet(root, "state", "list", "done")
    assert listed.output.splitlines() == ['o1\t{"shipped": true}']
    assert motet(root, "state", "list").output.splitlines() == ["done"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["emit", "order.placed", "{id: 1}"], "DATA is not JSON"),
        (["emit", "order.placed", "'x'"], "DATA is not JSON"),
        (
            ["emit", "no.such.topic", "{}"],
            "no step subscribes to topic 'no.such.topic'; "
            "subscribed topics: order.placed, work.fail",
        ),
        (["emit", "cron:Ship", "{}"], "internal to motet"),
        (["dlq", "redrive", "0123"], "no dead letter with id 0123"),
        (["new", "has space"], "not a usable project name"),
        (["state", "list", "--backend", "sqlite://host/x.db"], "--backend: backend"),
    ],
)
def test_a_wrong_argument_is_one_line_and_status_2(
    root: Path, args: list[str], expected: str
) -> None:
    result = motet(root, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("motet: error: ") and expected in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_emit_refuses_data_its_subscriber_would_dead_letter(tmp_path: Path) -> None:
    files = {
        **BASIC_STEPS,
        "steps/ship_step.py": BASIC_STEPS["steps/ship_step.py"]
        .replace('queue("order.placed")', 'queue("order.placed", input=Placed)')
        .replace(
            "from motet import queue\n",
            "from typing import TypedDict\n\nfrom motet import queue\n"
            "\n\nclass Placed(TypedDict):\n    id: str\n    qty: int\n",
        )
        .replace('order["id"]', 'order["id"]'),
    }
    root = write_project(tmp_path / "typed", files=files)
    result = motet(root, "emit", "order.placed", '{"id": "o1", "qty": "one"}')
    assert result.exit_code == 2
    assert "does not match the input of step 'Ship'" in result.stderr
    assert "ship_step.py" in result.stderr and "$.qty" in result.stderr


def test_state_get_of_a_missing_key_is_status_1(root: Path) -> None:
    result = motet(root, "state", "get", "done", "nope")
    assert result.exit_code == 1
    assert result.stderr == "motet: no key 'nope' in state namespace 'done'\n"


def test_dead_letters_are_listed_and_redriven(root: Path) -> None:
    assert motet(root, "dlq", "list").output == "no dead letters\n"
    assert motet(root, "emit", "work.fail", '"a"').exit_code == 0
    assert motet(root, "emit", "work.fail", '"b"').exit_code == 0
    letters = run_the_steps(root)
    assert sorted(d.envelope.data for d in letters) == ["a", "b"]

    table = motet(root, "dlq", "list")
    assert table.exit_code == 0
    assert table.output.splitlines()[0].split()[:3] == ["ID", "SUBSCRIPTION", "ATTEMPTS"]
    assert "RuntimeError: cannot do 'a'" in table.output
    as_json = [json.loads(x) for x in motet(root, "dlq", "list", "--json").output.splitlines()]
    assert {x["data"] for x in as_json} == {"a", "b"}
    assert {x["subscription"] for x in as_json} == {"AlwaysFails@work.fail"}
    assert motet(root, "dlq", "list", "--step", "Ship").output == "no dead letters\n"

    first = next(x for x in as_json if x["data"] == "a")
    one = motet(root, "dlq", "redrive", first["id"])
    assert one.exit_code == 0 and one.output == "re-drove 1 dead letter(s)\n"
    left = [json.loads(x) for x in motet(root, "dlq", "list", "--json").output.splitlines()]
    assert [x["data"] for x in left] == ["b"]
    everything = motet(root, "dlq", "redrive", "--all", "--step", "AlwaysFails")
    assert everything.output == "re-drove 1 dead letter(s)\n"
    assert motet(root, "dlq", "list").output == "no dead letters\n"
    # Re-driven messages run again (and, failing again, come back).
    assert sorted(d.envelope.data for d in run_the_steps(root)) == ["a", "b"]
    usage = motet(root, "dlq", "redrive")
    assert usage.exit_code == 2 and "name dead-letter ids, or pass --all" in usage.output


def test_a_folder_without_steps_says_where_to_run(tmp_path: Path) -> None:
    result = motet(tmp_path, "steps")
    assert result.exit_code == 2
    assert "no steps folder at" in result.stderr and "--project" in result.stderr


def test_a_broken_step_file_names_the_file_and_field(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "bad",
        files={
            "steps/x_step.py": 'config = {"name": "X", "triggers": [{"type": "queue"}]}\n'
            "async def handler(i, ctx):\n    pass\n"
        },
    )
    result = motet(root, "graph")
    assert result.exit_code == 2
    assert "x_step.py" in result.stderr and "field" in result.stderr
    assert "Traceback" not in result.output
    debug = CliRunner().invoke(main, ["--project", str(root), "--debug", "graph"])
    assert debug.exit_code == 1 and debug.exception is not None  # raised, so shown in full


def test_a_bug_outside_motet_errors_is_one_line_pointing_at_debug(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from motet.cli import _inspect

    def broken(steps: Any) -> str:
        raise KeyError("oops")

    monkeypatch.setattr(_inspect, "mermaid", broken)
    result = motet(root, "graph")
    assert result.exit_code == 1
    assert result.stderr.startswith("motet: error: KeyError: 'oops' (at ")
    assert "run with --debug for the traceback" in result.stderr
