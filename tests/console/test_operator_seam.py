"""The console sits above the gateway and observe: it reads what the gateway matched from
the ASGI scope (a request is matched once), reads request bodies with the gateway's reader
and answers with the gateway's problem responses; the gateway and observe import nothing of
it."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import motet
from motet import Observer
from motet._observer import HttpExchange
from motet.gateway._routes import RouteTable

from ..observe._app import http_step, open_observed

PACKAGE = Path(motet.__file__).parent


class Exchanges(Observer, list[HttpExchange]):
    def on_http(self, exchange: HttpExchange) -> None:
        self.append(exchange)


async def test_a_request_is_matched_once_and_its_route_reaches_the_observers(
    autojump_clock: Any, monkeypatch: Any
) -> None:
    calls: list[str] = []
    real = RouteTable.match

    def counted(self: RouteTable, method: str, path: str, raw: str | None = None) -> Any:
        calls.append(path)
        return real(self, method, path, raw)

    monkeypatch.setattr(RouteTable, "match", counted)

    async def put(request: Any, ctx: Any) -> Any:
        return {"status": 201, "body": {}}

    seen = Exchanges()
    async with open_observed(
        [http_step("PutNote", "PUT", "/notes/:key", put)], observers=[seen]
    ) as app:
        r = await app.http.put("/notes/a", json={}, headers={"x-trace-id": "f" * 32})
        wrong = await app.http.get("/notes/a")
        await app.http.get("/nowhere")
    assert r.status_code == 201 and wrong.status_code == 405
    assert calls == ["/notes/a", "/notes/a", "/nowhere"]  # once per request, by the gateway
    put_seen, wrong_seen, nowhere = seen
    assert (put_seen.route, put_seen.step, put_seen.trace_id) == (
        "/notes/:key",
        "PutNote",
        "f" * 32,
    )
    assert put_seen.status == 201
    assert (wrong_seen.route, wrong_seen.step) == (None, None)
    assert wrong_seen.trace_id == wrong.headers["x-trace-id"]
    assert (nowhere.route, nowhere.trace_id, nowhere.status) == (None, None, 404)


async def test_an_operator_body_over_the_limit_is_the_gateways_413(autojump_clock: Any) -> None:
    async with open_observed([]) as app:
        big = b'{"ids": ["' + b"x" * (300 * 1024) + b'"]}'
        r = await app.http.post(
            "/_motet/dead-letters/redrive",
            content=big,
            headers={"content-type": "application/json"},
        )
        declared = await app.http.post(
            "/_motet/dead-letters/redrive",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": "999999999"},
        )
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-content-type-options"] == "nosniff"  # the console's own headers kept
    problem = r.json()
    assert problem["type"] == "urn:motet:problem:body-too-large"
    assert problem["instance"] == "/_motet/dead-letters/redrive" and problem["trace_id"]
    assert declared.status_code == 413 and "declares 999999999 bytes" in declared.json()["detail"]


def imported(folder: Path) -> set[str]:
    """Every motet module the modules of `folder` import, at run time or for types."""
    found: set[str] = set()
    for file in folder.glob("*.py"):
        package = "motet." + folder.relative_to(PACKAGE).as_posix().replace("/", ".")
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    found.add(f"{base}.{node.module}")
                else:
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("motet")}


def test_the_console_is_its_own_package_above_the_gateway_and_observe() -> None:
    assert not (PACKAGE / "gateway" / "console").exists()
    assert {p.name for p in (PACKAGE / "console" / "static").iterdir()} >= {
        "index.html",
        "console.js",
        "console.css",
    }
    assert not list((PACKAGE / "gateway").glob("_operator*.py"))
    for below in ("gateway", "observe"):
        upward = {m for m in imported(PACKAGE / below) if m.startswith("motet.console")}
        assert upward == set(), f"motet.{below} imports {upward}"
    console = imported(PACKAGE / "console")
    assert "motet.gateway._exchange" in console and "motet.gateway._asgi" in console
    for module in ("_api.py", "_operator.py", "_auth.py"):
        # The endpoints read the runtime's view; only the part that runs them has a Runtime.
        assert "from .._runtime" not in (PACKAGE / "console" / module).read_text(), module


def test_observe_reads_the_view_not_the_runtime() -> None:
    for module in ("_api.py", "_operator.py"):
        source = (PACKAGE / "console" / module).read_text()
        assert ".dispatcher" not in source and ".hub" not in source, module
    for module in ("_telemetry.py", "_runtime_metrics.py"):
        source = (PACKAGE / "observe" / module).read_text()
        assert ".dispatcher" not in source and ".hub" not in source, module
        assert ".publisher" not in source, module
