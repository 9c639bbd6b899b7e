"""DNS rebinding: without a token, operator endpoints answer only requests whose Host names
this machine's loopback (or the configured host), even from a loopback client."""

from __future__ import annotations

import pytest

from motet.console._auth import OperatorAccess, host_name
from tests.observe._app import open_observed


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "10.0.0.5", "[::2]:80"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_motet/state"),
        ("GET", "/_motet/dead-letters"),
        ("GET", "/metrics"),
        ("POST", "/_motet/dead-letters/discard"),
    ],
)
async def test_a_foreign_host_is_refused_without_a_token(host: str, method: str, path: str) -> None:
    async with open_observed([]) as app:
        response = await app.http.request(
            method, path, headers={"host": host}, json={"ids": ["x"]} if method == "POST" else None
        )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "DNS rebinding" in response.json()["detail"]


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:3000", "127.0.0.1:3000", "[::1]:3000", "app.localhost"]
)
async def test_loopback_hosts_are_answered(host: str) -> None:
    async with open_observed([]) as app:
        response = await app.http.get("/_motet/health", headers={"host": host})
    assert response.status_code == 200


async def test_with_a_token_the_host_is_not_checked() -> None:
    async with open_observed([], token="tok") as app:
        response = await app.http.get(
            "/_motet/health", headers={"host": "motet.internal", "authorization": "Bearer tok"}
        )
    assert response.status_code == 200


def test_the_configured_host_is_accepted() -> None:
    access = OperatorAccess(None)
    assert access.host_refusal({"host": "myhost:3000"}, bound_host="myhost") is None
    assert access.host_refusal({"host": "other:3000"}, bound_host="myhost") is not None
    assert access.host_refusal({}, bound_host="") is None  # HTTP/1.0: no browser


@pytest.mark.parametrize(
    ("header", "name"),
    [("a:1", "a"), ("[::1]:3000", "::1"), ("::1", "::1"), ("LOCALHOST", "localhost")],
)
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name
