"""The gateway on a real socket: every status it answers, through a real HTTP client."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from motet._envelope import new_id

from .conftest import DirectInvoker, Starter

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    doc = response.json()
    assert doc["type"] == f"urn:motet:problem:{slug}"
    assert doc["status"] == status
    assert doc["title"] and doc["detail"]
    assert doc["instance"] == response.request.url.path
    assert doc["trace_id"] == response.headers["x-trace-id"]
    assert "Traceback" not in response.text
    return doc


async def test_post_validates_body_and_returns_the_handlers_response(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/pets", json={"name": "Rex", "age": 3})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["location"] == "/pets/p1"
    assert response.json() == {"id": "p1", "name": "Rex", "age": 3}
    assert invoker.emitted == [("pet.created", {"id": "p1", "name": "Rex", "age": 3})]


async def test_path_and_query_parameters(app: Any, start_server: Starter) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        got = await client.get("/pets/42?x=1&tag=a&tag=b")
        owner = await client.get("/owners/ann/pets/rex")
        found = await client.get("/search", params=[("q", "dog"), ("tag", "a"), ("tag", "b")])
    assert got.json() == {"id": "42", "query": {"x": "1", "tag": ["a", "b"]}}
    async with httpx.AsyncClient(base_url=url) as client:
        slash = await client.get("/pets/a%2Fb%20c")
    assert slash.json()["id"] == "a/b c"  # an encoded '/' stays inside its parameter
    assert owner.json() == {"owner": "ann", "pet": "rex"}
    assert found.json() == ["dog", ["a", "b"]]


async def test_invalid_body_lists_every_field(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/pets", json={"age": "3", "extra": 1})
    doc = assert_problem(response, 400, "invalid-body")
    messages = [e["message"] for e in doc["errors"]]
    assert "required field missing @ $.body.name" in messages
    assert any(
        m.startswith("invalid value for type, expected int") and m.endswith("@ $.body.age")
        for m in messages
    )
    assert any("extra fields found (extra)" in m for m in messages)
    assert {e["path"] for e in doc["errors"]} >= {"$.body.name", "$.body.age"}
    assert invoker.calls == 0


async def test_malformed_json_array_and_wrong_content_type(app: Any, start_server: Starter) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        malformed = await client.post(
            "/pets", content=b'{"name": "Rex",', headers={"content-type": "application/json"}
        )
        array = await client.post("/pets", json=[{"name": "Rex", "age": 3}])
        form = await client.post("/pets", data={"name": "Rex", "age": "3"})
        empty = await client.post("/pets", headers={"content-type": "application/json"})
        nan = await client.post(
            "/echo", content=b"NaN", headers={"content-type": "application/json"}
        )
    assert "line 1 column" in assert_problem(malformed, 400, "malformed-json")["detail"]
    doc = assert_problem(array, 400, "invalid-body")
    assert [e["message"] for e in doc["errors"]] == ["expected an object, got array @ $.body"]
    assert (
        "application/x-www-form-urlencoded"
        in assert_problem(form, 415, "unsupported-media-type")["detail"]
    )
    assert assert_problem(empty, 400, "invalid-body")["errors"][0]["path"] == "$.body"
    assert_problem(nan, 400, "malformed-json")


async def test_not_found_and_method_not_allowed(app: Any, start_server: Starter) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        missing = await client.get("/nothing/here")
        wrong = await client.post("/pets/1", json={})
    assert_problem(missing, 404, "not-found")
    assert_problem(wrong, 405, "method-not-allowed")
    allowed = {m.strip() for m in wrong.headers["allow"].split(",")}
    assert {"GET", "DELETE", "HEAD"} <= allowed
    assert "POST" not in allowed


async def test_handler_error_is_500_with_an_error_id_found_in_the_log(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/boom")
        group = await client.post("/boom-group")
    doc = assert_problem(response, 500, "handler-error")
    assert "secret" not in response.text
    line = next(r for r in invoker.records if r.fields.get("error_id") == doc["error_id"])
    assert line.level == "error" and line.step == "boom"
    assert line.trace_id == doc["trace_id"]
    assert "RuntimeError" in str(line.fields["error"])
    assert line.traceback is not None and "RuntimeError" in line.traceback  # exc_info=
    group_doc = assert_problem(group, 500, "handler-error")
    assert any(r.fields.get("error_id") == group_doc["error_id"] for r in invoker.records)


async def test_handler_timeout_is_504(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/slow")
    doc = assert_problem(response, 504, "handler-timeout")
    assert "0.3 s" in doc["detail"]
    assert any(r.fields.get("error_id") == doc["error_id"] for r in invoker.records)


async def test_trace_id_header_on_every_response_and_incoming_id_joins(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app)
    mine = new_id()
    async with httpx.AsyncClient(base_url=url) as client:
        joined = await client.post("/echo", json={"a": 1}, headers={"x-trace-id": mine})
        fresh = await client.post("/echo", json={"a": 1}, headers={"x-trace-id": "bad id!"})
        missing = await client.get("/nope")
        spec = await client.get("/openapi.json")
    assert joined.headers["x-trace-id"] == mine
    assert joined.json()["trace_id"] == mine
    assert fresh.headers["x-trace-id"] != "bad id!"
    assert fresh.json()["trace_id"] == fresh.headers["x-trace-id"]
    assert len(missing.headers["x-trace-id"]) == 32
    assert len(spec.headers["x-trace-id"]) == 32
    assert (
        len(
            {
                joined.headers["x-trace-id"],
                fresh.headers["x-trace-id"],
                missing.headers["x-trace-id"],
            }
        )
        == 3
    )


async def test_body_larger_than_the_limit_is_413(
    app: Any, invoker: DirectInvoker, start_server: Starter
) -> None:
    url = await start_server(app)  # the app's limit is 4096 bytes
    async with httpx.AsyncClient(base_url=url) as client:
        ok = await client.post("/echo", json={"s": "x" * 3000})
        big = await client.post("/echo", json={"s": "x" * 5000})
    assert ok.status_code == 200 and ok.json()["raw"] > 3000
    doc = assert_problem(big, 413, "body-too-large")
    assert "4096" in doc["detail"]
    assert big.headers["connection"] == "close"
    assert invoker.calls == 1


async def test_response_shapes(app: Any, invoker: DirectInvoker, start_server: Starter) -> None:
    url = await start_server(app)
    async with httpx.AsyncClient(base_url=url) as client:
        deleted = await client.delete("/pets/1")
        html = await client.get("/text")
        dc = await client.get("/note")
        bad = await client.get("/bad-status")
        unserializable = await client.get("/not-json")
    assert deleted.status_code == 204 and deleted.content == b""
    assert "content-length" not in deleted.headers
    assert html.headers["content-type"] == "text/html" and html.text == "<h1>hi</h1>"
    assert dc.json() == {"text": "dataclass body"}
    bad_doc = assert_problem(bad, 500, "invalid-response")
    line = next(r for r in invoker.records if r.fields.get("error_id") == bad_doc["error_id"])
    assert "status must be an int in 100..599, got 'ok'" in line.message
    odd_doc = assert_problem(unserializable, 500, "invalid-response")
    line = next(r for r in invoker.records if r.fields.get("error_id") == odd_doc["error_id"])
    assert "object is not JSON-serializable @ $.when" in line.message


async def test_many_concurrent_requests_keep_their_own_trace(
    app: Any, start_server: Starter
) -> None:
    url = await start_server(app)
    seen: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=url) as client:

        async def one(i: int) -> None:
            response = await client.post("/echo", json={"i": i})
            seen.append((response.headers["x-trace-id"], response.json()["trace_id"]))

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(one, i)
    assert len(seen) == 30
    assert all(a == b for a, b in seen)
    assert len({a for a, _ in seen}) == 30


async def test_hypercorn_messages_go_to_the_motet_gateway_logger(
    app: Any, start_server: Starter, caplog: Any
) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="motet.gateway"):
        url = await start_server(app)
    assert any(r.name == "motet.gateway" and url in r.getMessage() for r in caplog.records)
