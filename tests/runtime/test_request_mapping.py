"""A Motia 0.x Python HTTP handler reads its request as a dict (`req.get("body")`,
`req["pathParams"]`); motet's `Request` reads that way too, beside its attributes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from motet.steps import load_step
from motet.steps._http import Request
from motet.testing import open_test_runtime


async def test_a_motia_handler_reads_the_request_as_a_dict(autojump_clock: Any) -> None:
    async def handler(req: Any, ctx: Any) -> Any:
        return {
            "status": 200,
            "body": {
                "body": req.get("body"),
                "id": req["pathParams"]["id"],
                "q": req["queryParams"].get("q"),
                "agent": req["headers"].get("x-agent"),
                "missing": req.get("nope", "default"),
                "keys": sorted(req),
            },
        }

    step = load_step(
        {"type": "api", "name": "Pets", "method": "POST", "path": "/pets/:id"}, handler
    )
    async with open_test_runtime([step]) as app:
        response = await app.http.post(
            "/pets/7?q=x", json={"name": "Rex"}, headers={"X-Agent": "t"}
        )
    assert response.status == 200, response.json
    assert response.json == {
        "body": {"name": "Rex"},
        "id": "7",
        "q": "x",
        "agent": "t",
        "missing": "default",
        "keys": ["body", "headers", "method", "path", "pathParams", "queryParams"],
    }


def test_the_mapping_is_read_only_and_keeps_the_attributes() -> None:
    req = Request("GET", "/p/1", {"id": "1"}, {"q": ["a", "b"]}, {"h": "v"}, None, "t" * 32)
    assert isinstance(req, Mapping)
    assert req["path_params"] is req.path_params and req["query_params"] is req.query
    assert req.pathParams == {"id": "1"} and req.queryParams == {"q": ["a", "b"]}
    assert "body" in req and "trace_id" not in req and len(req) == 6
    with pytest.raises(KeyError):
        req["trace_id"]
    with pytest.raises(TypeError):
        req["body"] = 1  # type: ignore[index]
