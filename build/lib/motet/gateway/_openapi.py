"""An OpenAPI 3.1 document for the HTTP steps, from their body, query and response schemas.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so `json_schema()` output is used as is; the
classes it lists under `$defs` move to `components.schemas`.

Responses: the statuses the trigger declares (`response={201: Pet}`), plus every status the
handler's source returns as a literal (`return {"status": 404, ...}`,
`Response(409, ...)`), so a client (or a schemathesis run) is told about each answer the
step can give; plus the problem statuses the gateway itself answers with.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from .._errors import GatewayError
from ..steps._json_schema import json_schema
from ..steps._schema import is_object_schema
from ._options import GatewayOptions
from ._problem import (
    BODY_TOO_LARGE,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INVALID_BODY,
    INVALID_QUERY,
    JSON_TOO_DEEP,
    MALFORMED_JSON,
    PROBLEM_CONTENT_TYPE,
    REQUEST_TIMEOUT,
    UNSUPPORTED_MEDIA_TYPE,
    ProblemKind,
    problem_schema,
)
from ._routes import Route

_REF = "#/components/schemas/"


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Problem": problem_schema()}

    def embed(self, schema: Any, where: str) -> dict[str, Any]:
        document = json_schema(schema, ref_prefix=_REF)
        for name, definition in document.pop("$defs", {}).items():
            known = self.schemas.setdefault(name, definition)
            if known != definition:
                raise GatewayError(
                    f"OpenAPI: two different schemas are both named {name!r} "
                    f"(the second in {where}); rename one of the classes"
                )
        return document


def _problem_response(kinds: Sequence[ProblemKind]) -> dict[str, Any]:
    titles = "; ".join(dict.fromkeys(f"{k.title} ({k.type})" for k in kinds))
    return {
        "description": titles,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _REF + "Problem"}}},
    }


def _parameters(route: Route, components: _Components) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path.params
    ]
    query = route.trigger.query
    if query is not None and is_object_schema(query):
        document = components.embed(query, f"the query of step {route.step.name!r}")
        required = set(document.get("required", ()))
        for name, schema in document.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": schema}
            )
    return parameters


def handler_statuses(handler: Any) -> set[int]:
    """The statuses `handler`'s source returns as literals: `{"status": 404, ...}` dicts and
    `Response(404, ...)` / `Response(status=404, ...)` calls. Empty when there is no source."""
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(handler)))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return set()
    found: set[int] = set()

    def status(node: ast.AST | None) -> None:
        if isinstance(node, ast.Constant) and type(node.value) is int and 100 <= node.value < 600:
            found.add(node.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "status":
                    status(value)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name == "Response":
                status(node.args[0] if node.args else None)
                for keyword in node.keywords:
                    if keyword.arg == "status":
                        status(keyword.value)
    return found


def _responses(route: Route, components: _Components) -> dict[str, Any]:
    trigger = route.trigger
    responses: dict[str, Any] = {}
    for status, schema in sorted((trigger.response or {}).items()):
        entry: dict[str, Any] = {"description": _phrase(status)}
        if schema is not None:
            where = f"the {status} response of step {route.step.name!r}"
            entry["content"] = {"application/json": {"schema": components.embed(schema, where)}}
        responses[str(status)] = entry
    for status in sorted(handler_statuses(route.step.handler)):
        responses.setdefault(
            str(status), {"description": f"{_phrase(status)} (returned by the handler)"}
        )
    if not any(200 <= int(s) < 300 for s in responses):
        responses["200"] = {"description": "OK"}
    errors: dict[int, list[ProblemKind]] = {}
    kinds = [
        MALFORMED_JSON,
        JSON_TOO_DEEP,
        REQUEST_TIMEOUT,
        BODY_TOO_LARGE,
        HANDLER_ERROR,
        HANDLER_TIMEOUT,
    ]
    if trigger.body is not None:
        kinds += [INVALID_BODY, UNSUPPORTED_MEDIA_TYPE]
    if trigger.query is not None:
        kinds.append(INVALID_QUERY)
    for kind in kinds:
        errors.setdefault(kind.status, []).append(kind)
    for status, group in sorted(errors.items()):
        responses.setdefault(str(status), _problem_response(group))
    return responses


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status {status}"


def openapi_document(
    routes: Sequence[Route], options: GatewayOptions, *, prefix: str = ""
) -> dict[str, Any]:
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for route in routes:
        step, trigger = route.step, route.trigger
        operation_id = step.name
        if operation_id in used_ids:
            operation_id = f"{step.name}_{trigger.method.lower()}_{len(used_ids)}"
        used_ids.add(operation_id)
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": step.description or step.name,
            "responses": _responses(route, components),
        }
        if step.flows:
            operation["tags"] = list(step.flows)
        parameters = _parameters(route, components)
        if parameters:
            operation["parameters"] = parameters
        if trigger.body is not None:
            schema = components.embed(trigger.body, f"the body of step {step.name!r}")
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        paths.setdefault(prefix + route.path.openapi, {})[trigger.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": options.title, "version": options.version},
        "paths": paths,
        "components": {"schemas": dict(sorted(components.schemas.items()))},
    }
