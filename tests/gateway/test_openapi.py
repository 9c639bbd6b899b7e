"""GET /openapi.json: a valid OpenAPI 3.1 document built from the HTTP steps' schemas."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate as validate_openapi

from motet.gateway import GatewayOptions, build_app

from .conftest import DirectInvoker, make_steps


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
