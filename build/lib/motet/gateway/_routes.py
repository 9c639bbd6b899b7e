"""HTTP triggers as routes: one route per (method, path shape), matched per request.

Paths were parsed when their triggers were made (`HttpTrigger.route`, `motet.steps._paths`);
this module only arranges them for lookup and refuses two steps answering one method and path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

import attrs

from .._errors import GatewayError
from ..steps._model import HttpTrigger, Step
from ..steps._paths import RoutePath


@attrs.frozen
class Route:
    step: Step
    trigger: HttpTrigger

    @property
    def path(self) -> RoutePath:
        return self.trigger.route

    @property
    def endpoint(self) -> str:
        return f"motet:{self.step.name}:{self.trigger.method}:{self.path.written}"


def collect_routes(steps: Sequence[Step]) -> list[Route]:
    """Every HTTP trigger of every step; two triggers on one method and path shape raise."""
    routes: list[Route] = []
    seen: dict[tuple[str, str], Route] = {}
    for step in steps:
        for trigger in step.of_type(HttpTrigger):
            route = Route(step, trigger)
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


class RouteTable:
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
