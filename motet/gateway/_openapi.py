"""An OpenAPI 3.1 document for the HTTP steps, from their body, query and response schemas.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so `json_schema()` output (for a class, a JSON
Schema dict or a pydantic model alike) is used as is; the definitions it lists under `$defs`
move to `components.schemas`, their references rewritten.

The served body is an `OpenApiBody`: built when the document is first asked for, not when the
gateway starts (reading every handler's source and parsing it is start-up time and memory a
server that is never asked for its document need not spend).

Responses: the statuses the trigger declares (`response={201: Pet}`), plus every status the
handler's source returns as a literal (`return {"status": 404, ...}`,
`Response(409, ...)`), so a client (or a schemathesis run) is told about each answer the
step can give; plus the problem statuses the gateway itself answers with.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from ..steps._json_schema import json_schema
from ..steps._schema_pydantic import is_model_class, model_schema
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
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class _Components:
    """`components.schemas`, filled as operations embed their schemas.

    A schema's `$defs` (or draft-07 `definitions`) move here and every `$ref` to them is
    rewritten: `#` in a schema object of an OpenAPI document means the document, not the
    schema. Definitions are shared by name when equal; a different definition under a taken
    name (two pydantic models both with a `Tag`) is renamed `Tag2`, its references with it.
    A schema with other local references (`#`, `#/properties/...`) becomes a component
    itself, so they keep pointing inside it.
    """

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Problem": problem_schema()}

    def embed(self, schema: Any, *, response: bool = False) -> dict[str, Any]:
        # A pydantic model answers in its serialized shape (computed fields, serializers).
        if response and is_model_class(schema):
            document = model_schema(schema, mode="serialization")
        else:
            document = json_schema(schema)
        for keyword in ("$schema", "$id"):  # the document's dialect is OpenAPI 3.1's
            document.pop(keyword, None)
        defs = {
            f"#/{keyword}/{name}": (name, definition)
            for keyword in ("$defs", "definitions")
            for name, definition in (document.pop(keyword, None) or {}).items()
        }
        # First as if every name were free, to see which definitions are already known.
        tentative = {ref: _REF + name for ref, (name, _) in defs.items()}
        final: dict[str, str] = {}
        for ref, (name, definition) in defs.items():
            final[ref] = _REF + self._name_for(name, _rewrite(definition, tentative))
        for ref, (_, definition) in defs.items():
            self.schemas[final[ref].removeprefix(_REF)] = _rewrite(definition, final)
        document = _rewrite(document, final)
        if _local_refs(document):
            name = self._name_for(str(document.get("title") or "Schema"), None)
            document = _rewrite(document, {"#": _REF + name})
            self.schemas[name] = document
            return {"$ref": _REF + name}
        return document

    def _name_for(self, base: str, definition: Any) -> str:
        """`base` if free or already holding `definition`, else the first free `base2`...
        (OpenAPI allows only `A-Z a-z 0-9 . _ -` in component names)."""
        base = _NAME_UNSAFE.sub("_", base) or "Schema"
        name, n = base, 2
        while name in self.schemas and (definition is None or self.schemas[name] != definition):
            name, n = f"{base}{n}", n + 1
        return name


def _rewrite(node: Any, refs: Mapping[str, str]) -> Any:
    """A copy of `node` with each `$ref` that starts with a key of `refs` re-pointed."""
    if isinstance(node, dict):
        out = {key: _rewrite(value, refs) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str):
            for old, new in refs.items():
                if old == "#":  # the schema's own root: every local ref but components'
                    if not ref.startswith(_REF) and ref.startswith("#"):
                        out["$ref"] = new + ref[1:]
                        break
                elif ref == old or ref.startswith(old + "/"):
                    out["$ref"] = new + ref[len(old) :]
                    break
        return out
    if isinstance(node, list):
        return [_rewrite(item, refs) for item in node]
    return node


def _local_refs(node: Any) -> bool:
    """Whether a `$ref` under `node` still points into the schema (`#...`, not components)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and not ref.startswith(_REF):
            return True
        return any(_local_refs(value) for value in node.values())
    if isinstance(node, list):
        return any(_local_refs(item) for item in node)
    return False


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
    if query is not None:
        document = components.embed(query)
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
            document = components.embed(schema, response=True)
            entry["content"] = {"application/json": {"schema": document}}
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
            schema = components.embed(trigger.body)
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


class OpenApiBody:
    """The document for `routes`, serialized the first time it is called and kept.

    Built lazily (see the module docstring); the routes are dropped once it is built. A
    handler's source is read when the document is built: a file edited after the server
    started shows its new literal statuses, as `motet dev` (which restarts) would anyway."""

    __slots__ = ("_body", "_options", "_prefix", "_routes")

    def __init__(self, routes: Sequence[Route], options: GatewayOptions, *, prefix: str = ""):
        self._routes: Sequence[Route] | None = routes
        self._options = options
        self._prefix = prefix
        self._body: bytes | None = None

    def __call__(self) -> bytes:
        if self._body is None:
            assert self._routes is not None
            document = openapi_document(self._routes, self._options, prefix=self._prefix)
            self._body = json.dumps(document, separators=(",", ":")).encode()
            self._routes = None
        return self._body
