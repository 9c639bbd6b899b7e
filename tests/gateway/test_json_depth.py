"""Deeply nested JSON is refused (400 problem+json) before the parser can recurse: on step
routes (with and without a body schema) and on the operator's redrive endpoint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from motet.gateway import GatewayOptions, build_app
from motet.gateway._json_depth import too_deep
from tests.observe._app import open_observed

from .conftest import DirectInvoker, Starter, make_steps

BOMB = b"[" * 100_000  # 100 KB, under the body limit below


@pytest.mark.parametrize("path", ["/echo", "/pets"])  # no schema / an attrs body schema
async def test_a_json_bomb_is_a_400_problem_not_a_500(
    path: str, invoker: DirectInvoker, converter: Any, start_server: Starter
) -> None:
    app = build_app(
        make_steps(), invoker, converter=converter, options=GatewayOptions(max_body_size=1 << 20)
    )
    url = await start_server(app, max_body_size=1 << 20)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            path, content=BOMB, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"] == "urn:motet:problem:json-too-deep"
    assert "128" in doc["detail"]
    assert invoker.calls == 0
    assert not [r for r in invoker.records if r.level == "error"]


async def test_the_depth_limit_is_configurable(
    invoker: DirectInvoker, converter: Any, start_server: Starter
) -> None:
    options = GatewayOptions(max_json_depth=3)
    url = await start_server(build_app(make_steps(), invoker, converter=converter, options=options))
    async with httpx.AsyncClient(base_url=url) as client:
        ok = await client.post("/echo", json=[[[1]]])
        deep = await client.post("/echo", json=[[[[1]]]])
        in_string = await client.post("/echo", json={"a": "[[[[{{{{"})
    assert ok.status_code == 200 and ok.json()["body"] == [[[1]]]
    assert deep.status_code == 400 and "3 levels" in deep.json()["detail"]
    assert in_string.status_code == 200


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (b"", 1, False),
        (b"[]", 1, False),
        (b"[[]]", 1, True),
        (b'{"a": {"b": [1, 2]}}', 3, False),
        (b'{"a": {"b": [[1], 2]}}', 3, True),
        (b'["[[[[", "\\"[[[["]', 1, False),  # brackets in strings, escaped quotes
        (b"[]" * 1000, 1, False),  # many brackets, shallow
        (b"[" * 129 + b"]" * 129, 128, True),
    ],
)
def test_too_deep(text: bytes, limit: int, expected: bool) -> None:
    assert too_deep(text, limit) is expected


async def test_the_redrive_endpoint_refuses_a_json_bomb() -> None:
    async with open_observed([]) as app:
        response = await app.http.post(
            "/_motet/dead-letters/redrive",
            content=b'{"ids": ' + BOMB + b"}",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "nested deeper than 128" in response.json()["detail"]


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


_TEXT = st.text(alphabet='ab[]{}"\\\u00e9', max_size=6)
_JSON = st.recursive(
    st.none() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=40,
)


@given(value=_JSON, limit=st.integers(min_value=0, max_value=12), indent=st.booleans())
def test_too_deep_agrees_with_the_real_depth(value: Any, limit: int, indent: bool) -> None:
    raw = json.dumps(value, indent=1 if indent else None, ensure_ascii=False).encode()
    assert too_deep(raw, limit) is (_depth(value) > limit)
