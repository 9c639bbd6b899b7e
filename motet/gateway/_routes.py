"""HTTP triggers as routes: `:id` and `{id}` path parameters, one route per (method, path)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

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
    pattern: re.Pattern[str]  # matches a decoded request path; groups are the parameters

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
    regex_parts: list[str] = []
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
            regex_parts.append(f"(?P<{name}>[^/]+)")
            continue
        if "<" in segment or ">" in segment:
            raise GatewayError(
                f"step {step!r}: path {path!r} may not contain '<' or '>'; "
                "write parameters as ':id' or '{id}'"
            )
        literals = _BRACED.split(segment)[::2]
        if any("{" in text or "}" in text for text in literals):
            raise GatewayError(f"step {step!r}: unbalanced braces in path {path!r}")
        rule_parts.append(_BRACED.sub(lambda m: f"<{add_param(m.group(1))}>", segment))
        api_parts.append(_BRACED.sub(lambda m: f"{{{m.group(1)}}}", segment))
        names = _BRACED.findall(segment)
        regex = "".join(
            re.escape(text) + (f"(?P<{names[i]}>[^/]+?)" if i < len(names) else "")
            for i, text in enumerate(literals)
        )
        regex_parts.append(regex)
    return RoutePath(
        written=path,
        rule="/" + "/".join(rule_parts),
        openapi="/" + "/".join(api_parts),
        params=tuple(params),
        pattern=re.compile("/" + "/".join(regex_parts) + r"\Z"),
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


@attrs.frozen
class Match:
    """A path that belongs to motet: `route` is None when no route takes the method (405)."""

    route: Route | None
    params: dict[str, str]
    allowed: tuple[str, ...]


class Router:
    """Finds the route of a (method, decoded path). Literal paths are looked up first, so
    `/pets/search` wins over `/pets/:id`; then parameterized paths in declaration order."""

    def __init__(self, routes: Sequence[Route], prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self._literal: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        by_shape: dict[str, dict[str, Route]] = {}  # /pets/:id and /pets/{petId} are one
        for route in routes:
            by_shape.setdefault(route.path.shape, {})[route.trigger.method.upper()] = route
        for methods in by_shape.values():
            path = next(iter(methods.values())).path
            if path.params:
                self._patterns.append((path.pattern, methods))
            else:
                self._literal[path.written] = methods

    def _find(self, path: str) -> dict[str, Route] | None:
        for pattern, methods in self._patterns:
            if pattern.match(path) is not None:
                return methods
        return None

    def match(self, method: str, path: str, raw_path: str | None = None) -> Match | None:
        """`path` is percent-decoded; parameters come from `raw_path` when it matches, so an
        encoded '/' (`%2F`) stays inside its parameter."""
        if self.prefix:
            if not path.startswith(self.prefix):
                return None
            path = path[len(self.prefix) :] or "/"
            if raw_path is not None:
                raw_path = (
                    raw_path[len(self.prefix) :] if raw_path.startswith(self.prefix) else None
                )
        target = path
        methods = self._literal.get(path)
        if methods is None and raw_path is not None and raw_path != path:
            methods = self._find(raw_path)
            target = raw_path
        if methods is None:
            methods = self._find(path)
            target = path
        if methods is None:
            return None
        route = methods.get(method)
        if route is None and method == "HEAD":
            route = methods.get("GET")
        allowed = set(methods) | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"}
        params: dict[str, str] = {}
        if route is not None and route.path.params:
            found = route.path.pattern.match(target)
            assert found is not None  # same shape as the pattern that matched
            params = found.groupdict()
            if target is not path:
                params = {k: unquote(v) for k, v in params.items()}
        return Match(route, params, tuple(sorted(allowed)))
