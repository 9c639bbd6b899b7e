"""The gateway app in-process (quart's test client): routing, parsing and shapes that need
no socket, and handler timeouts on trio's MockClock."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio
from werkzeug.exceptions import NotFound

import motet.gateway
from motet._errors import GatewayError
from motet.gateway import (
    GatewayOptions,
    KeepAliveSafeHTTPConnection,
    Response,
    accept_trace_id,
    build_app,
    mount,
    serve,
)
from motet.gateway._app import _forget_frames
from motet.gateway._exchange import InvalidResponse, make_reply
from motet.steps._model import HttpTrigger, Step

from .conftest import DirectInvoker, echo, make_steps, quart_app, slow

# Quart's own test client drives these tests: the quart-trio app only (the socket tests
# serve both apps).
app = pytest.fixture(quart_app, name="app")


async def test_every_public_name_is_importable_from_motet_gateway() -> None:
    assert motet.gateway.__all__ == sorted(motet.gateway.__all__)
    for name in motet.gateway.__all__:
        assert getattr(motet.gateway, name) is not None


async def test_query_schema_converts_text_and_reports_bad_values(app: Any) -> None:
    client = app.test_client()
    ok = await client.get("/search?q=dog&limit=5&exact=true&tag=a")
    bad = await client.get("/search?limit=five&exact=maybe")
    assert ok.status_code == 200
    assert await ok.get_json() == ["dog", "a"]
    assert bad.status_code == 400
    doc = await bad.get_json()
    assert doc["type"] == "urn:motet:problem:invalid-query"
    messages = [e["message"] for e in doc["errors"]]
    assert "required field missing @ $.query.q" in messages
    assert any(m.endswith("@ $.query.limit") for m in messages)
    assert any(m.endswith("@ $.query.exact") for m in messages)


async def test_body_without_schema(app: Any) -> None:
    client = app.test_client()
    untyped = await client.post("/echo", data=b'{"a": [1, 2]}', headers={"X-Custom": "v"})
    text = await client.post("/echo", data=b"hello", headers={"content-type": "text/plain"})
    empty = await client.post("/echo")
    assert (await untyped.get_json())["body"] == {"a": [1, 2]}
    assert (await untyped.get_json())["x_custom"] == "v"
    assert (await untyped.get_json())["header_names_lower"] is True
    assert await text.get_json() == {**(await text.get_json()), "body": None, "raw": 5}
    assert (await empty.get_json())["body"] is None


async def test_handler_timeout_uses_the_gateway_default_on_mock_clock(
    autojump_clock: trio.testing.MockClock, invoker: DirectInvoker, converter: Any
) -> None:
    step = Step(name="forever", triggers=(HttpTrigger("GET", "/forever"),), handler=slow)
    app = build_app(
        [step], invoker, converter=converter, options=GatewayOptions(handler_timeout=120.0)
    )
    start = trio.current_time()
    response = await app.test_client().get("/forever")
    assert response.status_code == 504
    assert trio.current_time() - start == pytest.approx(120.0)
    assert "120 s" in (await response.get_json())["detail"]


async def test_mount_in_a_users_quart_trio_app(invoker: DirectInvoker, converter: Any) -> None:
    user_app = QuartTrio("user")

    @user_app.get("/hello")
    async def hello() -> str:
        return "hi from the user's app"

    mount(user_app, make_steps(), invoker, converter=converter, url_prefix="/api")
    assert user_app.asgi_http_class is KeepAliveSafeHTTPConnection
    client = user_app.test_client()
    created = await client.post("/api/pets", json={"name": "Rex", "age": 3})
    invalid = await client.post("/api/pets", json={"name": "Rex"})
    mine = await client.get("/hello")
    spec = await client.get("/api/openapi.json")
    assert created.status_code == 201
    assert len(created.headers["x-trace-id"]) == 32
    assert invalid.status_code == 400
    assert (await invalid.get_json())["errors"][0]["path"] == "$.body.age"
    assert await mine.get_data() == b"hi from the user's app"
    assert "x-trace-id" not in mine.headers  # the user's routes stay the user's
    assert "/api/pets/{id}" in (await spec.get_json())["paths"]


async def test_two_steps_on_one_route_refuse_to_build(
    invoker: DirectInvoker, converter: Any
) -> None:
    a = Step(name="a", triggers=(HttpTrigger("GET", "/pets/:id"),), handler=echo)
    b = Step(name="b", triggers=(HttpTrigger("GET", "/pets/{petId}"),), handler=echo)
    with pytest.raises(GatewayError, match=r"steps 'a' and 'b' both answer GET"):
        build_app([a, b], invoker, converter=converter)


async def test_trace_ids_accepted_from_clients() -> None:
    assert accept_trace_id("0123456789abcdef0123456789ABCDEF") == "0123456789abcdef" * 2
    assert accept_trace_id("01234567-89ab-cdef-0123-456789abcdef") == "0123456789abcdef" * 2
    for bad in (None, "", "abc", "g" * 32, "0" * 33, "'; drop table"):
        assert accept_trace_id(bad) is None


async def test_reply_shapes(converter: Any) -> None:
    assert make_reply(Response(202, {"a": 1}, {"X-A": "1"}), converter).headers == {
        "x-a": "1",
        "content-type": "application/json",
    }
    # A dict with keys beyond status/body/headers is data, not a response.
    data = make_reply({"status": "sold", "name": "Rex"}, converter)
    assert data.status == 200 and b'"status":"sold"' in data.body
    assert make_reply(None, converter).status == 204
    assert make_reply({"status": 201}, converter).body == b""
    assert make_reply([1, 2], converter).body == b"[1,2]"
    assert make_reply({"status": 200, "body": b"\x00\x01"}, converter).headers == {
        "content-type": "application/octet-stream"
    }
    for bad in ({"status": True}, {"status": 700}, {"status": 200, "headers": {"a": None}}):
        with pytest.raises(InvalidResponse):
            make_reply(bad, converter)


async def test_options_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_body_size must be an integer >= 1, got 0"):
        GatewayOptions(max_body_size=0)
    with pytest.raises(ValueError, match="port must be a port number 0-65535, got 70000"):
        GatewayOptions(port=70000)
    assert GatewayOptions(trace_header="X-Request-Trace").trace_header == "x-request-trace"
    assert GatewayOptions().bind == "127.0.0.1:3000"
    assert GatewayOptions(host="::1", port=0).bind == "[::1]:0"


async def test_port_in_use_is_a_gateway_error(app: Any, nursery: trio.Nursery) -> None:
    stop = trio.Event()
    urls = await nursery.start(
        functools.partial(serve, app, GatewayOptions(port=0), shutdown_trigger=stop.wait)
    )
    port = int(urls[0].rsplit(":", 1)[1])
    with pytest.raises(GatewayError, match=f"cannot listen on 127.0.0.1:{port}"):
        await serve(app, GatewayOptions(port=port))
    stop.set()


async def test_options_and_head_on_motet_routes(app: Any) -> None:
    client = app.test_client()
    options = await client.options("/pets/7")
    head = await client.head("/pets/7")
    assert options.status_code == 204
    assert options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert len(options.headers["x-trace-id"]) == 32
    assert head.status_code == 200
    assert await head.get_data() == b""


async def test_a_literal_path_wins_over_a_parameter(invoker: DirectInvoker, converter: Any) -> None:
    async def which(request: Any, ctx: Any) -> Any:
        return {"params": dict(request.path_params)}

    steps = [
        Step(name="by-id", handler=which, triggers=(HttpTrigger("GET", "/items/:id"),)),
        Step(name="special", handler=which, triggers=(HttpTrigger("GET", "/items/special"),)),
        Step(
            name="nested", handler=which, triggers=(HttpTrigger("GET", "/items/{id}/parts/{part}"),)
        ),
    ]
    client = build_app(steps, invoker, converter=converter).test_client()
    assert await (await client.get("/items/special")).get_json() == {"params": {}}
    assert await (await client.get("/items/a%20b")).get_json() == {"params": {"id": "a b"}}
    assert await (await client.get("/items/1/parts/x%20y")).get_json() == {
        "params": {"id": "1", "part": "x y"}
    }
    assert (await client.get("/items/1/parts")).status_code == 404


async def test_routes_added_to_the_built_app_answer_with_problems_too(app: Any) -> None:
    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    client = app.test_client()
    ok = await client.get("/health")
    wrong = await client.post("/health")
    assert await ok.get_json() == {"ok": True}
    assert len(ok.headers["x-trace-id"]) == 32
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "GET" in wrong.headers["allow"]
    assert (await wrong.get_json())["trace_id"] == wrong.headers["x-trace-id"]


async def test_mounted_routes_answer_405_for_a_method_no_step_takes(
    invoker: DirectInvoker, converter: Any
) -> None:
    user_app = QuartTrio("user")
    mount(user_app, make_steps(), invoker, converter=converter, url_prefix="/api/")
    client = user_app.test_client()
    wrong = await client.put("/api/pets")
    elsewhere = await client.get("/apipets")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "OPTIONS, POST"
    assert elsewhere.status_code == 404


def test_an_http_errors_tracebacks_are_dropped_even_on_a_context_chain_that_loops() -> None:
    def raised(exc: BaseException) -> BaseException:
        try:
            raise exc
        except BaseException as caught:
            return caught

    miss, inner = raised(NotFound()), raised(LookupError("no match"))
    miss.__context__, inner.__context__ = inner, miss  # set by hand: Python never makes one
    _forget_frames(miss)
    assert miss.__traceback__ is None and inner.__traceback__ is None
