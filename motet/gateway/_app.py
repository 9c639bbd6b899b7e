"""The gateway as a quart-trio app, or mounted on a user's own quart-trio app.

motet's routes are answered by `MotetASGI` in front of the app (see `_asgi`); the quart-trio
app behind it answers everything else. For `build_app` that is routes a user adds to the
returned app, and otherwise problem+json 404s; its error handlers never let a traceback
out. quart-trio hands an exception group to the error handler of its first sub-exception
and drops the rest, so the catch-all handler below can log only that
one; motet's own routes never get there (`MotetASGI` catches everything itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import cattrs
import quart
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .._envelope import new_id
from ..actors._dispatcher import Dispatcher
from ..steps._http import HttpInvoker
from ..steps._model import Step
from ..streams import StreamService
from ._asgi import MotetASGI
from ._connection import make_keep_alive_safe
from ._invoker import as_invoker
from ._openapi import OpenApiBody
from ._options import GatewayOptions
from ._problem import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_CONTENT_TYPE,
    ProblemKind,
    http_problem_kind,
    problem_body,
)
from ._routes import collect_routes
from ._streams import stream_endpoint
from ._trace import accept_trace_id

_G_TRACE = "motet_trace_id"


def _wrap(
    app: QuartTrio,
    steps: Sequence[Step],
    invoker: HttpInvoker,
    converter: cattrs.Converter,
    options: GatewayOptions,
    prefix: str,
    streams: StreamService | None = None,
) -> MotetASGI:
    routes = collect_routes(steps)
    openapi = (
        OpenApiBody(routes, options, prefix=prefix) if options.openapi_path is not None else None
    )
    motet = MotetASGI(
        routes,
        invoker,
        converter=converter,
        options=options,
        fallback=app.asgi_app,
        prefix=prefix,
        openapi=openapi,
        streams=stream_endpoint(streams, invoker, options),
    )
    app.asgi_app = motet  # type: ignore[method-assign, assignment]
    make_keep_alive_safe(app)
    return motet


def mount(
    app: QuartTrio,
    steps: Sequence[Step],
    invoker: HttpInvoker | Dispatcher,
    *,
    converter: cattrs.Converter,
    options: GatewayOptions | None = None,
    url_prefix: str = "",
    streams: StreamService | None = None,
) -> MotetASGI:
    """Serve motet's routes (and its OpenAPI document) from a user's quart-trio app, under
    `url_prefix`. The app's own routes, error handlers and 404s stay the user's; a path
    that is motet's answers 405 to a method none of its steps takes.

    `invoker` is a runtime's `dispatcher` (served through `RuntimeInvoker`) or any other
    `HttpInvoker`. Wraps `app.asgi_app` (Quart's middleware hook) and switches the app to the
    keep-alive-safe connection class (see `_connection`). Returns the wrapper. With
    `streams` (`runtime.streams`), `/_streams/{name}/{group}` is served too (not prefixed)."""
    return _wrap(
        app,
        steps,
        as_invoker(invoker),
        converter,
        options or GatewayOptions(),
        url_prefix.rstrip("/"),
        streams,
    )


def build_app(
    steps: Sequence[Step],
    invoker: HttpInvoker | Dispatcher,
    *,
    converter: cattrs.Converter,
    options: GatewayOptions | None = None,
    streams: StreamService | None = None,
) -> QuartTrio:
    """A quart-trio app serving every HTTP trigger of `steps`, with problem+json errors and
    the trace id header on every response. Serve it with `motet.gateway.serve`. With
    `streams` (a runtime's), it also serves `/_streams/{name}/{group}` (SSE, WebSocket)."""
    options = options or GatewayOptions()
    runner = as_invoker(invoker)
    app = QuartTrio("motet.gateway")
    app.config["MAX_CONTENT_LENGTH"] = options.max_body_size
    app.config["BODY_TIMEOUT"] = options.read_timeout
    _wrap(app, steps, runner, converter, options, "", streams)
    header = options.trace_header

    def trace_id() -> str:
        found: str | None = quart.g.get(_G_TRACE)
        if found is None:
            found = accept_trace_id(quart.request.headers.get(header)) or new_id()
            setattr(quart.g, _G_TRACE, found)
        return found

    def problem(kind: ProblemKind, detail: str, **extra: str) -> quart.Response:
        body = problem_body(
            kind, detail, instance=quart.request.path, trace_id=trace_id(), extra=extra
        )
        return app.response_class(body, status=kind.status, content_type=PROBLEM_CONTENT_TYPE)

    @app.after_request
    async def trace_header(response: quart.Response) -> quart.Response:
        response.headers[header] = trace_id()
        return response

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> quart.Response:
        _forget_frames(error)
        status = error.code or 500
        if status == 404:
            return problem(NOT_FOUND, f"no route for {quart.request.path}")
        if isinstance(error, MethodNotAllowed):
            allowed = ", ".join(sorted(error.valid_methods or ()))
            response = problem(
                METHOD_NOT_ALLOWED,
                f"{quart.request.method} is not allowed on "
                f"{quart.request.path}; allowed: {allowed}",
            )
            response.headers["allow"] = allowed
            return response
        return problem(http_problem_kind(status, error.name), error.description or error.name)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> quart.Response:
        error_id = new_id()
        runner.log_error(
            f"gateway error on {quart.request.path}: {type(error).__name__}: {error}",
            trace_id=trace_id(),
            step=None,
            error_id=error_id,
            exc_info=error,
        )
        return problem(
            INTERNAL_ERROR, f"the gateway failed (error id {error_id})", error_id=error_id
        )

    return app


def _forget_frames(error: BaseException) -> None:
    """Drop the tracebacks of an HTTP error (and of what it was raised from): its answer
    shows none. Quart keeps a routing miss (404, 405) on the request, and its traceback
    holds the frames that matched the request, which hold the request: a cycle per
    unmatched path, that kept the request and its body until the collector's next pass."""
    seen: set[int] = set()  # a context chain set by hand may loop
    pending: BaseException | None = error
    while pending is not None and id(pending) not in seen:
        seen.add(id(pending))
        pending.__traceback__ = None
        pending = pending.__context__
