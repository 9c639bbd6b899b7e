"""Operator safety: loopback only without a token, a token everywhere with one, constant-time
comparison, and no start on a non-loopback address without a token."""

from __future__ import annotations

from typing import Any

import pytest

from motet import GatewayError, RuntimeOptions, open_runtime
from motet.console import _auth as _operator_auth
from motet.console._auth import check_bind, is_loopback, resolve_token
from motet.gateway import GatewayOptions
from motet.project import ProjectConfig

from ._app import http_step, open_observed

OPERATOR_PATHS = [
    "/_console",
    "/_console/console.js",
    "/metrics",
    "/_motet/health",
    "/_motet/dead-letters",
    "/_motet/state",
    "/_motet/queues",
]


def hello() -> Any:
    async def handler(request: Any, ctx: Any) -> Any:
        return {"status": 200, "body": {"hi": True}}

    return http_step("Hello", "GET", "/hello", handler)


@pytest.mark.parametrize("path", OPERATOR_PATHS)
async def test_loopback_clients_need_no_token_when_none_is_set(path: str) -> None:
    async with open_observed([hello()]) as app:
        response = await app.http.get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", OPERATOR_PATHS)
async def test_other_clients_are_refused_without_a_configured_token(path: str) -> None:
    async with open_observed([hello()], client=("10.1.2.3", 40000)) as app:
        response = await app.http.get(path)
        step = await app.http.get("/hello")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "loopback" in response.json()["detail"]
    assert step.status_code == 200  # the app's own routes are not operator endpoints


async def test_a_configured_token_is_required_from_everyone() -> None:
    async with open_observed([hello()], token="s3cret-token") as app:
        missing = await app.http.get("/_motet/health")
        wrong = await app.http.get(
            "/_motet/health", headers={"authorization": "Bearer s3cret-tokem"}
        )
        basic = await app.http.get("/metrics", headers={"authorization": "Basic s3cret-token"})
        right = await app.http.get(
            "/_motet/health", headers={"authorization": "Bearer s3cret-token"}
        )
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="motet"'
        body = refused.json()
        assert body["status"] == 401 and body["type"] == "urn:motet:problem:unauthorized"
        assert "s3cret" not in refused.text
    assert right.status_code == 200 and right.json()["status"] == "ok"


async def test_visiting_the_console_with_the_token_sets_a_cookie() -> None:
    async with open_observed([hello()], token="tok", client=("192.0.2.9", 1)) as app:
        wrong = await app.http.get("/_console", params={"token": "nope"})
        visit = await app.http.get("/_console", params={"token": "tok"})
        assert visit.status_code == 303 and visit.headers["location"] == "/_console/"
        cookie = visit.headers["set-cookie"]
        assert cookie.startswith("motet_token=tok;") and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        app.http.cookies.clear()
        page = await app.http.get("/_console/", headers={"cookie": "a=b; motet_token=tok"})
        api = await app.http.get("/_motet/queues", headers={"cookie": "motet_token=tok"})
    assert wrong.status_code == 401
    assert page.status_code == 200 and "<title>motet console</title>" in page.text
    assert api.status_code == 200


async def test_a_token_with_cookie_unsafe_characters_round_trips() -> None:
    token = "a;b c=d%"
    async with open_observed([hello()], token=token) as app:
        visit = await app.http.get("/_console", params={"token": token})
        cookie = visit.headers["set-cookie"].split(";")[0]
        app.http.cookies.clear()
        api = await app.http.get("/_motet/health", headers={"cookie": cookie})
    assert cookie == "motet_token=a%3Bb%20c%3Dd%25"
    assert api.status_code == 200


async def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = _operator_auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_operator_auth.hmac, "compare_digest", spy)
    async with open_observed([hello()], token="abc") as app:
        assert (
            await app.http.get("/metrics", headers={"authorization": "Bearer abd"})
        ).status_code == 401
        assert (
            await app.http.get("/metrics", headers={"authorization": "Bearer abc"})
        ).status_code == 200
    assert calls == [(b"abd", b"abc"), (b"abc", b"abc")]


async def test_a_non_loopback_bind_without_a_token_refuses_to_start() -> None:
    options = RuntimeOptions(log_sink=False)
    with pytest.raises(GatewayError) as caught:
        async with open_runtime(
            [hello()],
            serve=GatewayOptions(host="0.0.0.0", port=0),
            options=options,
            project=ProjectConfig(),
        ):
            pytest.fail("the runtime must not start")
    message = str(caught.value)
    assert "0.0.0.0" in message and "MOTET_TOKEN" in message and "127.0.0.1" in message


def test_bind_rules_and_token_sources() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "::1", "localhost", "::ffff:127.0.0.1"):
        check_bind(host, None)
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""):
        assert not is_loopback(host)
        with pytest.raises(GatewayError, match="without an operator token"):
            check_bind(host, None)
        check_bind(host, "a-token")  # a token makes any address acceptable
    assert resolve_token("from-config", {"MOTET_TOKEN": "from-env"}) == "from-config"
    assert resolve_token(None, {"MOTET_TOKEN": " from-env "}) == "from-env"
    assert resolve_token("  ", {"MOTET_TOKEN": ""}) is None
    assert resolve_token(None, {}) is None


async def test_operator_endpoints_answer_wrong_requests_with_problems() -> None:
    async with open_observed([hello()]) as app:
        unknown = await app.http.get("/_motet/nothing-here")
        bad_limit = await app.http.get("/_motet/logs", params={"limit": "many"})
        big_limit = await app.http.get("/_motet/traces", params={"limit": "0"})
        bad_level = await app.http.get("/_motet/logs", params={"level": "loud"})
        wrong_method = await app.http.post("/metrics", json={})
        post_get = await app.http.get("/_motet/dead-letters/redrive")
        not_json = await app.http.post(
            "/_motet/dead-letters/redrive", content=b"ids=1", headers={"content-type": "text/plain"}
        )
        bad_ids = await app.http.post("/_motet/dead-letters/redrive", json={"ids": "x"})
        no_file = await app.http.get("/_console/../../secret.py")
    assert unknown.status_code == 404
    assert bad_limit.status_code == 400 and "'limit'" in bad_limit.json()["detail"]
    assert big_limit.status_code == 400
    assert bad_level.status_code == 400 and "loud" in bad_level.json()["detail"]
    assert wrong_method.status_code == 405
    assert post_get.status_code == 405
    assert not_json.status_code == 415
    assert bad_ids.status_code == 400 and '"ids"' in bad_ids.json()["detail"]
    assert no_file.status_code == 404
