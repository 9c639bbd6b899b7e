"""The gateway as a quart-trio app, or as a Blueprint a user's own quart-trio app mounts.

Each HTTP trigger is one route. A route's view never lets an exception reach Quart: every
refusal and failure becomes a problem response here, because quart-trio hands an
exception group to the first matching error handler and drops the rest (stack.md, pitfall
3). Only Quart's own errors (404, 405, ...) go through the app's error handlers.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import cattrs
import quart
import trio
from quart import Blueprint
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .._envelope import new_id
from ..steps._model import Step
from ._connection import make_keep_alive_safe
from ._exchange import InvalidResponse, Rejected, build_request, make_reply
from ._openapi import openapi_document
from ._options import GatewayOptions
from ._problem import (
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_RESPONSE,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_CONTENT_TYPE,
    ProblemKind,
    http_problem_kind,
    problem_body,
)
from ._request import HttpInvoker, Request
from ._routes import Route, collect_routes

_TRACE_ID = re.compile(r"[0-9a-f]{32}\Z")
_G_TRACE = "motet_trace_id"


def accept_trace_id(value: str | None) -> str | None:
    """An incoming trace id joins its trace when it has motet's id form (32 hex digits;
    a UUID with dashes is accepted and normalized). Anything else starts a new trace."""
    if not value:
        return None
    candidate = value.strip().lower().replace("-", "")
    return candidate if _TRACE_ID.match(candidate) else None


class _Gateway:
    """What every motet route of one app or blueprint shares."""

    def __init__(self, steps: Sequence[Step], invoker: HttpInvoker,
                 converter: cattrs.Converter, options: GatewayOptions) -> None:
        self.routes = collect_routes(steps)
        self.invoker = invoker
        self.converter = converter
        self.options = options

    def trace_id(self) -> str:
        """The current request's trace id, chosen once per request."""
        found: str | None = quart.g.get(_G_TRACE)
        if found is None:
            header = quart.request.headers.get(self.options.trace_header)
            found = accept_trace_id(header) or new_id()
            setattr(quart.g, _G_TRACE, found)
        return found

    def add_trace_header(self, response: quart.Response) -> quart.Response:
        response.headers[self.options.trace_header] = self.trace_id()
        return response

    def problem(self, kind: ProblemKind, detail: str, *, extra: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None) -> quart.Response:
        body = problem_body(kind, detail, instance=quart.request.path,
                            trace_id=self.trace_id(), extra=extra)
        response = quart.current_app.response_class(
            body, status=kind.status, headers=dict(headers or {}),
            content_type=PROBLEM_CONTENT_TYPE)
        return self.add_trace_header(response)

    def fail(self, kind: ProblemKind, detail: str, message: str, *, step: str | None,
             error: BaseException | None = None) -> quart.Response:
        """A 5xx: logs `message` with a fresh error id and answers with that id."""
        error_id = new_id()
        fields: dict[str, Any] = {"error_id": error_id, "path": quart.request.path}
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
            fields["traceback"] = "".join(traceback.format_exception(error))
        self.invoker.log_error(message, trace_id=self.trace_id(), step=step, **fields)
        return self.problem(kind, f"{detail} (error id {error_id})",
                            extra={"error_id": error_id})

    async def handle(self, route: Route, path_params: Mapping[str, str]) -> quart.Response:
        try:
            request = await build_request(
                route, quart.request, path_params, trace_id=self.trace_id(),
                converter=self.converter, limit=self.options.max_body_size,
                timeout=self.options.read_timeout)
        except Rejected as rejected:
            headers = {"connection": "close"} if rejected.close else None
            return self.problem(rejected.kind, rejected.detail, extra=rejected.extra(),
                                headers=headers)
        return await self._invoke(route, request)

    async def _invoke(self, route: Route, request: Request) -> quart.Response:
        name = route.step.name
        seconds = route.trigger.timeout or self.options.handler_timeout
        failure: BaseException | None = None
        result: Any = None
        with trio.move_on_after(seconds) as scope:
            try:
                result = await self.invoker.invoke_http(route.step, route.trigger, request)
            except Exception as exc:
                failure = exc
            except BaseExceptionGroup as group:
                # Cancelled mixed with errors: keep the errors, let the Cancelled reach the
                # scope that cancelled (ours on timeout; a disconnect or shutdown otherwise).
                failure, cancelled = group.split(Exception)
                if cancelled is not None:
                    raise cancelled from None
        if scope.cancelled_caught:
            return self.fail(HANDLER_TIMEOUT, f"the handler of step {name!r} did not answer "
                             f"within {seconds:g} s",
                             f"handler of step {name!r} timed out after {seconds:g} s",
                             step=name, error=failure)
        if failure is not None:
            return self.fail(HANDLER_ERROR, f"the handler of step {name!r} failed",
                             f"handler of step {name!r} failed: {type(failure).__name__}: "
                             f"{failure}", step=name, error=failure)
        try:
            reply = make_reply(result, self.converter)
        except InvalidResponse as exc:
            return self.fail(INVALID_RESPONSE, f"the handler of step {name!r} returned an "
                             "invalid response",
                             f"handler of step {name!r} returned an invalid response: {exc}",
                             step=name, error=exc)
        response = quart.current_app.response_class(reply.body, status=reply.status,
                                                     headers=reply.headers)
        if "content-type" not in reply.headers:
            del response.headers["content-type"]  # no body, or the handler chose none
        return self.add_trace_header(response)

    def view(self, route: Route) -> Callable[..., Awaitable[quart.Response]]:
        async def view(**path_params: str) -> quart.Response:
            return await self.handle(route, path_params)

        view.__name__ = route.endpoint
        return view


def motet_blueprint(steps: Sequence[Step], invoker: HttpInvoker, *,
                    converter: cattrs.Converter, options: GatewayOptions | None = None,
                    name: str = "motet", url_prefix: str = "") -> Blueprint:
    """The routes of every HTTP trigger (and `/openapi.json`) as a Blueprint, for a user's
    own quart-trio app: `app.register_blueprint(motet_blueprint(...))`, or use `mount`."""
    options = options or GatewayOptions()
    gateway = _Gateway(steps, invoker, converter, options)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix or None)
    for route in gateway.routes:
        blueprint.add_url_rule(route.path.rule, route.endpoint, gateway.view(route),
                               methods=[route.trigger.method])
    if options.openapi_path is not None:
        document = json.dumps(openapi_document(gateway.routes, options, prefix=url_prefix))

        async def openapi() -> quart.Response:
            response = quart.current_app.response_class(document,
                                                         content_type="application/json")
            return gateway.add_trace_header(response)

        blueprint.add_url_rule(options.openapi_path, "openapi", openapi, methods=["GET"])
    blueprint.motet_gateway = gateway  # type: ignore[attr-defined]
    return blueprint


def mount(app: QuartTrio, steps: Sequence[Step], invoker: HttpInvoker, *,
          converter: cattrs.Converter, options: GatewayOptions | None = None,
          url_prefix: str = "") -> Blueprint:
    """Serve motet's routes from a user's quart-trio app, under `url_prefix`.

    Also switches the app to the keep-alive-safe connection class (see `_connection`);
    the app's own routes, error handlers and 404s stay the user's."""
    blueprint = motet_blueprint(steps, invoker, converter=converter, options=options,
                                url_prefix=url_prefix)
    app.register_blueprint(blueprint)
    make_keep_alive_safe(app)
    return blueprint


def build_app(steps: Sequence[Step], invoker: HttpInvoker, *, converter: cattrs.Converter,
              options: GatewayOptions | None = None) -> QuartTrio:
    """A quart-trio app serving every HTTP trigger of `steps`, with problem+json errors and
    the trace id header on every response. Serve it with `motet.gateway.serve`."""
    options = options or GatewayOptions()
    app = QuartTrio("motet.gateway")
    app.config["MAX_CONTENT_LENGTH"] = options.max_body_size
    app.config["BODY_TIMEOUT"] = options.read_timeout
    blueprint = motet_blueprint(steps, invoker, converter=converter, options=options)
    app.register_blueprint(blueprint)
    gateway: _Gateway = blueprint.motet_gateway  # type: ignore[attr-defined]
    make_keep_alive_safe(app)

    @app.after_request
    async def trace_header(response: quart.Response) -> quart.Response:
        return gateway.add_trace_header(response)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> quart.Response:
        status = error.code or 500
        if status == 404:
            return gateway.problem(NOT_FOUND, f"no route for {quart.request.path}")
        if isinstance(error, MethodNotAllowed):
            allowed = sorted(error.valid_methods or ())
            return gateway.problem(
                METHOD_NOT_ALLOWED,
                f"{quart.request.method} is not allowed on {quart.request.path}; "
                f"allowed: {', '.join(allowed)}",
                headers={"allow": ", ".join(allowed)})
        kind = http_problem_kind(status, error.name)
        return gateway.problem(kind, error.description or error.name)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> quart.Response:
        return gateway.fail(INTERNAL_ERROR, "the gateway failed",
                            f"gateway error on {quart.request.path}: "
                            f"{type(error).__name__}: {error}", step=None, error=error)

    return app
