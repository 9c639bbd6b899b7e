"""GET /openapi.json: a valid OpenAPI 3.1 document built from the HTTP steps' schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from motet._errors import InputValidationError
from motet.gateway import GatewayOptions, Response, _openapi, build_app, openapi_document
from motet.gateway._openapi import OpenApiBody
from motet.gateway._routes import collect_routes
from motet.steps import load_steps
from motet.steps._json_schema import json_schema
from motet.steps._model import HttpTrigger, Step
from motet.steps._schema import make_converter, validate

from .conftest import DirectInvoker, make_steps, quart_app

# Quart's own test client drives these tests: the quart-trio app only (the socket tests
# serve both apps).
app = pytest.fixture(quart_app, name="app")

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_openapi_document_is_valid_3_1(app: Any) -> None:
    response = await app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = await response.get_json()
    assert doc["openapi"] == "3.1.0"
    validate_openapi(doc)  # detects 3.1 from the document; raises on any violation


async def test_paths_parameters_bodies_and_errors(app: Any) -> None:
    doc = await (await app.test_client().get("/openapi.json")).get_json()
    paths = doc["paths"]
    assert set(paths["/pets/{id}"]) == {"get", "delete"}
    get_pet = paths["/pets/{id}"]["get"]
    assert get_pet["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert [p["name"] for p in paths["/owners/{owner}/pets/{pet}"]["get"]["parameters"]] == [
        "owner",
        "pet",
    ]

    create = paths["/pets"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name", "age"]
    assert body["properties"]["age"] == {"type": "integer"}
    assert body["additionalProperties"] is False
    created = create["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["title"] == "Pet"
    assert "200" not in create["responses"]
    for status in ("400", "413", "415", "500", "504"):
        problem = create["responses"][status]["content"]["application/problem+json"]
        assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "urn:motet:problem:invalid-body" in create["responses"]["400"]["description"]
    assert create["operationId"] == "create-pet"
    assert create["tags"] == ["pets"]

    search = paths["/search"]["get"]["parameters"]
    by_name = {p["name"]: p for p in search}
    assert by_name["q"]["required"] is True and by_name["q"]["in"] == "query"
    assert by_name["limit"]["required"] is False
    assert by_name["tag"]["schema"]["type"] == "array"
    assert "415" not in paths["/search"]["get"]["responses"]
    assert "Problem" in doc["components"]["schemas"]


async def test_openapi_route_can_be_moved_or_disabled(
    invoker: DirectInvoker, converter: Any
) -> None:
    moved = build_app(
        make_steps(),
        invoker,
        converter=converter,
        options=GatewayOptions(openapi_path="/api/spec", title="pets"),
    )
    off = build_app(
        make_steps(), invoker, converter=converter, options=GatewayOptions(openapi_path=None)
    )
    spec = await moved.test_client().get("/api/spec")
    assert (await spec.get_json())["info"] == {"title": "pets", "version": "0.1.0"}
    assert (await off.test_client().get("/openapi.json")).status_code == 404


# -- attrs validators as JSON Schema keywords; statuses the handler returns ----------------


@attrs.frozen
class Listing:
    title: str = attrs.field(validator=[attrs.validators.min_len(1), attrs.validators.max_len(80)])
    price: float = attrs.field(validator=[attrs.validators.gt(0), attrs.validators.le(10_000)])
    stock: int = attrs.field(
        default=0, validator=[attrs.validators.ge(0), attrs.validators.lt(100)]
    )
    kind: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(["new", "used"]))
    )
    sku: str = attrs.field(default="a1", validator=attrs.validators.matches_re(r"[a-z][0-9]+"))
    tags: list[str] = attrs.field(
        factory=list,
        validator=attrs.validators.deep_iterable(
            attrs.validators.min_len(2), attrs.validators.max_len(3)
        ),
    )


def test_attrs_validators_become_json_schema_keywords() -> None:
    properties = json_schema(Listing)["properties"]
    assert properties["title"] == {"type": "string", "minLength": 1, "maxLength": 80}
    assert properties["price"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 10_000}
    assert properties["stock"] == {"type": "integer", "minimum": 0, "exclusiveMaximum": 100}
    assert properties["kind"]["enum"] == ["new", "used", None]
    assert properties["sku"]["pattern"] == "^(?:[a-z][0-9]+)$"
    assert properties["tags"]["maxItems"] == 3
    assert properties["tags"]["items"] == {"type": "string", "minLength": 2}


@pytest.mark.parametrize(
    "body",
    [
        {"title": "lamp", "price": 5},
        {"title": "", "price": 5},
        {"title": "x" * 81, "price": 5},
        {"title": "lamp", "price": 0},
        {"title": "lamp", "price": 10_000},
        {"title": "lamp", "price": 10_000.5},
        {"title": "lamp", "price": 5, "stock": -1},
        {"title": "lamp", "price": 5, "stock": 100},
        {"title": "lamp", "price": 5, "kind": "broken"},
        {"title": "lamp", "price": 5, "kind": None},
        {"title": "lamp", "price": 5, "sku": "A1"},
        {"title": "lamp", "price": 5, "sku": "a1x"},
        {"title": "lamp", "price": 5, "tags": ["ok", "x"]},
        {"title": "lamp", "price": 5, "tags": ["ok", "ok", "ok", "ok"]},
    ],
)
def test_the_schema_accepts_exactly_what_the_gateway_accepts(body: dict[str, Any]) -> None:
    """schemathesis found schema-valid bodies the gateway refused (the schema did not say
    `min_len`, `ge`): for these bodies the schema and the validator now agree."""
    schema_ok = Draft202012Validator(json_schema(Listing)).is_valid(body)
    try:
        validate(make_converter(), body, Listing, root="$.body", what="request body")
        gateway_ok = True
    except InputValidationError:
        gateway_ok = False
    assert schema_ok is gateway_ok


async def _returns(request: Any, ctx: Any) -> Any:
    if request.query.get("gone"):
        return {"status": 410, "body": {"error": "gone"}}
    if request.query.get("conflict"):
        return Response(409, {"error": "conflict"})
    if request.query.get("moved"):
        return Response(status=301, headers={"location": "/elsewhere"})
    return {"status": 200, "body": {}}


def test_statuses_the_handler_returns_are_documented(invoker: DirectInvoker) -> None:
    step = Step(name="returns", handler=_returns, triggers=(HttpTrigger("GET", "/returns"),))
    doc = openapi_document(collect_routes([step]), GatewayOptions())
    responses = doc["paths"]["/returns"]["get"]["responses"]
    assert {"200", "301", "409", "410"} <= set(responses)
    assert responses["410"]["description"] == "Gone (returned by the handler)"
    validate_openapi(doc)


def test_the_example_pet_store_documents_its_rules_and_statuses() -> None:
    steps = [s for s in load_steps(REPO_ROOT / "steps") if "pet-store" in s.flows]
    doc = openapi_document(collect_routes(steps), GatewayOptions())
    validate_openapi(doc)
    body = doc["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]
    new_pet = body["schema"]["properties"]
    assert new_pet["name"]["minLength"] == 1 and new_pet["age"]["minimum"] == 0
    limit = next(p for p in doc["paths"]["/pets"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 200
    assert "404" in doc["paths"]["/pets/{id}"]["get"]["responses"]
    assert "404" in doc["paths"]["/pets/{id}"]["delete"]["responses"]


def test_the_document_is_built_at_its_first_request_and_kept(invoker: DirectInvoker) -> None:
    """Building reads every handler's source: a server never asked for its document does
    not spend that at start-up; asked twice, it builds once."""
    step = Step(name="returns", handler=_returns, triggers=(HttpTrigger("GET", "/returns"),))
    built: list[int] = []
    body = OpenApiBody(collect_routes([step]), GatewayOptions())
    with pytest.MonkeyPatch.context() as patch:
        real = _openapi.openapi_document

        def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
            built.append(1)
            return real(*args, **kwargs)

        patch.setattr(_openapi, "openapi_document", counting)
        assert built == []
        first = body()
        assert body() is first and len(built) == 1
    doc = json.loads(first)
    assert "409" in doc["paths"]["/returns"]["get"]["responses"]


async def test_a_handler_without_source_is_served_and_documented(
    invoker: DirectInvoker, converter: Any
) -> None:
    """A handler whose source cannot be read (made by exec) is served, and the document,
    built at the first request for it, still lists its route: only the statuses read from
    a source are missing."""
    namespace: dict[str, Any] = {}
    exec("async def made(request, ctx):\n    return {'status': 418, 'body': {}}", namespace)
    step = Step(name="made", handler=namespace["made"], triggers=(HttpTrigger("GET", "/made"),))
    client = build_app([step], invoker, converter=converter).test_client()
    assert (await client.get("/made")).status_code == 418
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = await response.get_json()
    assert "/made" in doc["paths"] and "418" not in doc["paths"]["/made"]["get"]["responses"]
    validate_openapi(doc)


async def test_a_document_that_cannot_be_built_is_a_logged_500_and_the_routes_still_serve(
    invoker: DirectInvoker, converter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built at the first request, a document the builder fails on (a schema it cannot
    take) no longer stops the server at start-up: that request gets a 500 problem whose
    error id is in the logged line with the traceback; every route keeps serving."""

    def fails(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("a schema the builder cannot take")

    monkeypatch.setattr(_openapi, "openapi_document", fails)
    client = build_app([_returning_step()], invoker, converter=converter).test_client()
    response = await client.get("/openapi.json")
    assert response.status_code == 500
    problem = await response.get_json()
    assert problem["type"] == "urn:motet:problem:internal-error"
    assert "OpenAPI document could not be built" in problem["detail"]
    (line,) = [r for r in invoker.records if r.level == "error"]
    assert line.fields["error_id"] == problem["error_id"]
    assert "a schema the builder cannot take" in (line.traceback or "")
    assert (await client.get("/returns?gone=1")).status_code == 410


def _returning_step() -> Step:
    return Step(name="returns", handler=_returns, triggers=(HttpTrigger("GET", "/returns"),))
