"""examples/motia_project, a project written the Motia way (no motet.toml), started with
`motet start` as a subprocess and checked over HTTP: the queue settings of its iii-config.yaml
(retry count and delay, fifo, the dead-letter topic, concurrency), its asyncio handler, its
pydantic JSON Schemas, and the start report of everything motet does not use.

Step files this branch cannot load yet are left out of the copy that runs (and
`test_the_whole_example_loads_unchanged` fails, as expected, until they load); the checks
that need them are expected failures until then.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from motet._errors import StepDefinitionError
from motet.steps import load_steps
from tests.cli._project import Motet, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "motia_project"


class Server:
    def __init__(self, motet: Motet, url: str, left_out: list[str]) -> None:
        self.motet = motet
        self.url = url
        self.left_out = left_out

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def report(self) -> list[str]:
        return [
            str(r.get("msg"))
            for r in self.motet.records()
            if str(r.get("msg", "")).startswith(("config: ", "not used: "))
        ]


def unloadable(steps: Path) -> list[Path]:
    """Step files that fail to load on their own (features of a branch not merged yet)."""
    failing = []
    for file in sorted(steps.rglob("*_step.py")):
        alone = steps.parent / "_alone" / "steps"
        shutil.rmtree(alone.parent, ignore_errors=True)
        alone.mkdir(parents=True)
        shutil.copy(file, alone / file.name)
        try:
            load_steps(alone)
        except StepDefinitionError:
            failing.append(file)
        finally:
            shutil.rmtree(alone.parent, ignore_errors=True)
    return failing


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("motia") / "motia_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", ".motet"))
    assert not (root / "motet.toml").exists()
    left_out = unloadable(root / "steps")
    for file in left_out:
        file.unlink()
    # As a user starts it, in the folder; SQLite (the default) in .motet/ of this copy.
    motet = Motet(root, "start", "--port", "0", env={"MOTET_LOG_FORMAT": "json"})
    try:
        yield Server(motet, motet.started(), [f.name for f in left_out])
    finally:
        motet.close()


def test_the_queues_run_with_the_options_of_iii_config_yaml(server: Server) -> None:
    queues = {q["topic"]: q["options"] for q in server.get("/_motet/queues")["queues"]}
    placed = queues["order.placed"]
    assert (placed["max_retries"], placed["retry_delay"]) == (2, 1500)
    assert placed["dead_letter_queue"] == "order.failed"
    ledger = queues["ledger.entry"]
    assert (ledger["strategy"], ledger["max_retries"], ledger["retry_delay"]) == ("fifo", 3, 200)
    assert queues["thumbnail.requested"]["concurrency"] == 2
    assert queues["order.failed"]["max_retries"] == 3  # not configured: motet's default


def wait_for_order(server: Server, order_id: str, status: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        order = server.get(f"/orders/{order_id}")
        return order if order["status"] == status else None

    order: dict[str, Any] = wait_until(done, f"order {order_id} {status}")
    return order


def test_retries_come_after_the_configured_delay_doubling(server: Server) -> None:
    status, created = server.call("POST", "/orders", {"item": "lamp", "failTimes": 2})
    assert status == 201
    order = wait_for_order(server, created["orderId"], "paid")
    first, second, third = order["attempts"]  # 1 attempt + 2 retries, the last one succeeds
    # retry_delay 1500 ms (motet's default is 1000), doubled per retry, jittered by 10 %.
    assert 1.35 <= second - first < 10.0
    assert 2.7 <= third - second < 10.0


def test_dead_letters_land_in_the_store_and_on_the_dead_letter_topic(server: Server) -> None:
    status, created = server.call("POST", "/orders", {"item": "vase", "failTimes": 10})
    assert status == 201
    order_id = created["orderId"]
    order = wait_for_order(server, order_id, "failed")  # set by the order.failed subscriber
    assert len(order["attempts"]) == 3  # max_retries: 2, then no more
    assert order["deadLetterAttempts"] == 3
    assert "payment provider unavailable (attempt 3)" in order["error"]
    letters = server.get("/_motet/dead-letters")["dead_letters"]
    mine = [d for d in letters if d["message"]["data"].get("id") == order_id]
    assert len(mine) == 1 and mine[0]["attempts"] == 3
    assert mine[0]["subscription"] == "ChargePayment@order.placed"


def test_fifo_applies_each_accounts_entries_in_order_through_a_retry(server: Server) -> None:
    for seq in range(1, 7):
        for account in ("acme", "globex"):
            entry = {"seq": seq, "failOnce": account == "acme" and seq == 1}
            status, _ = server.call("POST", f"/accounts/{account}/entries", entry)
            assert status == 202

    def applied(account: str) -> dict[str, Any] | None:
        state: dict[str, Any] = server.get(f"/accounts/{account}")
        return state if len(state["entries"]) == 6 else None

    acme = wait_until(lambda: applied("acme"), "acme's 6 entries")
    assert acme["entries"] == [1, 2, 3, 4, 5, 6]  # entry 1 failed once and still came first
    assert acme["failed"] == [1]
    assert wait_until(lambda: applied("globex"), "globex's entries")["entries"] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]


def test_concurrency_limits_the_renders_running_at_once(server: Server) -> None:
    status, _ = server.call("POST", "/thumbnails", {"images": [f"img{i}.png" for i in range(8)]})
    assert status == 202
    stats = wait_until(
        lambda: (s := server.get("/thumbnails/stats"))["done"] == 8 and s, "8 renders"
    )
    assert stats["most_at_once"] == 2


def test_the_start_report_lists_what_motet_does_not_use(server: Server) -> None:
    report = server.report()
    assert any("iii-config.yaml (a Motia project" in line for line in report), report
    rest = [line for line in report if "modules::api::RestApiModule" in line]
    assert len(rest) == 1 and "127.0.0.1:3000" in rest[0]
    assert sum("modules::shell::ExecModule" in line for line in report) == 1
    # One line each, said once.
    assert len(report) == len(set(report))


def test_the_asyncio_handler_answers(server: Server) -> None:
    status, quote = server.call("GET", "/quotes/acme")
    assert status == 200, quote
    assert quote["symbol"] == "ACME" and set(quote["venues"]) == {"north", "south", "east"}
    assert quote["best"] == min(quote["venues"].values())


def test_pydantic_json_schemas_validate_bodies_and_queue_input(server: Server) -> None:
    status, pet = server.call("POST", "/pets", {"name": "Rex", "species": "dog", "age": 3})
    assert status == 201, pet
    assert pet == {"id": "pet-rex", "name": "Rex", "species": "dog", "age": 3}
    status, problem = server.call("POST", "/pets", {"name": "", "species": "cat", "age": -1})
    assert status == 400
    said = json.dumps(problem)
    assert "name" in said and "age" in said
    welcome = wait_until(
        lambda: server.call("GET", "/_motet/state/welcome/pet-rex")[0] == 200, "welcome pack"
    )
    assert welcome


def test_the_start_report_lists_each_steps_unused_config_keys(server: Server) -> None:
    report = server.report()
    welcome = [line for line in report if "WelcomePet" in line]
    assert any("includeFiles" in line for line in welcome), report
    assert any("infrastructure" in line for line in welcome), report


def test_the_whole_example_loads_unchanged(server: Server) -> None:
    assert server.left_out == []
