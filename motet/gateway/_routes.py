"""HTTP triggers as routes: `:id` and `{id}` path parameters, one route per (method, path)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from .._errors import GatewayError
from ..steps._model import HttpTrigger, Step

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BRACED = re.compile(r"\{([^{}/]*)\}")


@attrs.frozen
class RoutePath:
    """One path as written (`/pets/:id`), as a werkzeug rule (`/pets/<id>`) and as an
    OpenAPI path (`/pets/{id}`), with its parameter names in order."""

    written: str
    rule: str
    openapi: str
    params: tuple[str, ...]

    @property
    def shape(self) -> str:
        """The path with parameter names erased: two routes with one shape collide."""
        return _BRACED.sub("{}", self.openapi)


@attrs.frozen
class Route:
    step: Step
    trigger: HttpTrigger
    path: RoutePath

    @property
    def endpoint(self) -> str:
        return f"motet:{self.step.name}:{self.trigger.method}:{self.path.written}"


def parse_path(path: str, *, step: str = "?") -> RoutePath:
    """Parse a trigger path; a bad one raises GatewayError naming the step and the path."""
    if not path.startswith("/"):
        raise GatewayError(f"step {step!r}: HTTP path {path!r} must start with '/'")
    rule_parts: list[str] = []
    api_parts: list[str] = []
    params: list[str] = []

    def add_param(name: str) -> str:
        if not _NAME.match(name):
            raise GatewayError(
                f"step {step!r}: path parameter {name!r} in {path!r} must be an identifier "
                "(letters, digits, '_', not starting with a digit)"
            )
        if name in params:
            raise GatewayError(f"step {step!r}: path parameter {name!r} appears twice in {path!r}")
        params.append(name)
        return name

    for segment in path.split("/")[1:]:
        if segment.startswith(":"):
            name = add_param(segment[1:])
            rule_parts.append(f"<{name}>")
            api_parts.append(f"{{{name}}}")
            continue
        if "<" in segment or ">" in segment:
            raise GatewayError(f"step {step!r}: path {path!r} may not contain '<' or '>'; "
                               "write parameters as ':id' or '{id}'")
        rule_parts.append(_BRACED.sub(lambda m: f"<{add_param(m.group(1))}>", segment))
        api_parts.append(_BRACED.sub(lambda m: f"{{{m.group(1)}}}", segment))
        if "{" in _BRACED.sub("", segment) or "}" in _BRACED.sub("", segment):
            raise GatewayError(f"step {step!r}: unbalanced braces in path {path!r}")
    return RoutePath(
        written=path,
        rule="/" + "/".join(rule_parts),
        openapi="/" + "/".join(api_parts),
        params=tuple(params),
    )


def collect_routes(steps: Sequence[Step]) -> list[Route]:
    """Every HTTP trigger of every step; two triggers on one method and path shape raise."""
    routes: list[Route] = []
    seen: dict[tuple[str, str], Route] = {}
    for step in steps:
        for trigger in step.of_type(HttpTrigger):
            route = Route(step, trigger, parse_path(trigger.path, step=step.name))
            key = (trigger.method.upper(), route.path.shape)
            if key in seen:
                other = seen[key]
                raise GatewayError(
                    f"steps {other.step.name!r} and {step.name!r} both answer "
                    f"{key[0]} {other.path.written!r} / {route.path.written!r}; "
                    "a method and path may belong to one step only"
                )
            seen[key] = route
            routes.append(route)
    return routes
