"""The operator's side of the gateway: the console at `/_console`, its JSON API under
`/_motet/...` and Prometheus metrics at `/metrics`, in front of the step routes.

`OperatorASGI` wraps the gateway's ASGI app. Operator paths are answered here, behind the
access rules of `_operator_auth`; every other request goes to the wrapped app, timed, and
is reported to the runtime's telemetry (route, method, status, duration, trace id) for
HTTP spans and metrics. Operator requests themselves are not traced (the console polls).

    GET  /_console                      the console (static files from ./console)
    GET  /metrics                       Prometheus text
    GET  /_motet/health                 backend answers; steps, pending, dead, in flight
    GET  /_motet/flows?flow=            the flows graph, laid out
    GET  /_motet/routes                 HTTP steps (the endpoint tester's list)
    GET  /_motet/logs?after=&step=&trace_id=&level=&q=&since=&until=&limit=
    GET  /_motet/traces?step=&since=&until=&limit=      trace summaries, newest first
    GET  /_motet/traces/<trace id>      its spans as a waterfall (parents) and its logs
    GET  /_motet/queues                 depth per subscription, with its options
    GET  /_motet/dead-letters?subscription=&limit=
    POST /_motet/dead-letters/redrive   {"ids": [...]}  (also /discard)
    GET  /_motet/state[/<namespace>[/<key>]]
    GET  /_motet/cron                   cron steps, next fire times, last tick
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from .._envelope import new_id
from ..observe import PROMETHEUS_CONTENT_TYPE, HttpExchange
from ._asgi import MotetASGI, send_response
from ._exchange import discard_body, header_map
from ._operator_api import BadRequest, Operated, OpReply, OpRequest, find_endpoint
from ._operator_auth import OperatorAccess, token_cookie
from ._options import GatewayOptions
from ._problem import (
    INTERNAL_ERROR,
    PROBLEM_CONTENT_TYPE,
    ProblemKind,
    http_problem_kind,
    problem_body,
)

if TYPE_CHECKING:
    from .._runtime import Runtime
    from ..observe import Telemetry

CONSOLE_DIR = Path(__file__).parent / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
MAX_OPERATOR_BODY = 256 * 1024
UNAUTHORIZED = ProblemKind("unauthorized", 401, "Unauthorized")
FORBIDDEN_HOST = ProblemKind("forbidden-host", 403, "Forbidden")
PAYLOAD_TOO_LARGE = ProblemKind("payload-too-large", 413, "Payload Too Large")
# The console's own files load nothing from elsewhere (the network may be closed).
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; style-src 'self'; img-src 'self' data:",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def is_operator_path(path: str) -> bool:
    return (
        path == "/metrics"
        or path == "/_console"
        or path.startswith("/_console/")
        or path == "/_motet"
        or path.startswith("/_motet/")
    )


def console_files() -> dict[str, Path]:
    return {p.name: p for p in CONSOLE_DIR.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES}


class OperatorASGI:
    def __init__(
        self,
        runtime: Runtime,
        inner: Any,
        *,
        access: OperatorAccess,
        options: GatewayOptions,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.runtime = runtime
        self.telemetry = telemetry
        self.inner = inner
        self.access = access
        self.options = options
        self.motet = inner if isinstance(inner, MotetASGI) else None
        self.files = console_files()
        self._trace_header = options.trace_header.encode("latin-1")

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        if is_operator_path(scope["path"]):
            return await self._operator(scope, receive, send)
        telemetry = self.telemetry
        if telemetry is None:
            return await self.inner(scope, receive, send)
        status = 0
        trace_id: str | None = None

        async def observed(message: Any) -> None:
            nonlocal status, trace_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == self._trace_header:
                        trace_id = value.decode("latin-1")
            await send(message)

        t0 = trio.current_time()
        try:
            await self.inner(scope, receive, observed)
        finally:
            if status:  # a client that left before any answer is nobody's request
                route, step = self._route(scope)
                telemetry.on_http(
                    HttpExchange(
                        method=scope["method"],
                        route=route,
                        path=scope["path"],
                        status=status,
                        trace_id=trace_id,
                        step=step,
                        duration=trio.current_time() - t0,
                    )
                )

    def _route(self, scope: HTTPScope) -> tuple[str | None, str | None]:
        if self.motet is None:
            return None, None
        raw = scope.get("raw_path")
        match = self.motet.router.match(
            scope["method"], scope["path"], raw.decode("latin-1") if raw else None
        )
        if match is None:
            return None, None
        if match.route is None:  # a step path with a method none of its steps takes
            return None, None
        return match.route.path.written, match.route.step.name

    # -- operator requests ---------------------------------------------------------------

    async def _operator(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        headers = header_map(scope["headers"])
        path, method = scope["path"], scope["method"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        client = scope.get("client")
        refusal = self.access.refusal(client[0] if client else None, headers)
        if (
            refusal is not None
            and path in ("/_console", "/_console/")
            and self.access.matches(query.get("token"))
        ):
            # Trade the token in the URL for a cookie, then drop it from the address bar.
            return await send_response(
                send,
                303,
                b"",
                {
                    "location": "/_console/",
                    "set-cookie": token_cookie(query["token"]),
                    **SECURITY_HEADERS,
                },
            )
        if refusal is not None:
            return await self._problem(
                send, scope, UNAUTHORIZED, refusal, {"www-authenticate": 'Bearer realm="motet"'}
            )
        wrong_host = self.access.host_refusal(headers, bound_host=self.options.host)
        if wrong_host is not None:
            return await self._problem(send, scope, FORBIDDEN_HOST, wrong_host)
        try:
            body = await self._read_body(receive, headers) if method == "POST" else b""
            reply = await self._answer(method, path, query, body, headers)
        except BadRequest as exc:
            if exc.status == 413:  # the body was not read to its end
                await self._problem(
                    send, scope, PAYLOAD_TOO_LARGE, exc.detail, {"connection": "close"}
                )
                return await discard_body(
                    receive,
                    seconds=self.options.linger_timeout,
                    limit=self.options.linger_max_bytes,
                )
            kind = http_problem_kind(
                exc.status,
                {
                    400: "Bad Request",
                    404: "Not Found",
                    405: "Method Not Allowed",
                    413: "Payload Too Large",
                    415: "Unsupported Media Type",
                    503: "Service Unavailable",
                }.get(exc.status, "Error"),
            )
            return await self._problem(send, scope, kind, exc.detail)
        except Exception as exc:  # a store or backend failure: a 500 with an id, logged
            error_id = new_id()
            if self.runtime.hub is not None:
                self.runtime.hub.logger().error(
                    f"operator endpoint {path} failed: {type(exc).__name__}: {exc}",
                    error_id=error_id,
                    exc_info=exc,
                )
            return await self._problem(
                send, scope, INTERNAL_ERROR, f"the operator endpoint failed (error id {error_id})"
            )
        await send_response(
            send,
            reply.status,
            reply.body,
            {"content-type": reply.content_type, **SECURITY_HEADERS},
            head=method == "HEAD",
        )

    async def _read_body(self, receive: ASGIReceiveCallable, headers: dict[str, str]) -> bytes:
        if not headers.get("content-type", "").split(";")[0].strip() == "application/json":
            # Also what keeps other sites from posting here with the console's cookie: a
            # cross-site form cannot send application/json without a CORS preflight.
            raise BadRequest("operator POSTs take Content-Type: application/json", status=415)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise BadRequest("the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_OPERATOR_BODY:
                raise BadRequest(f"body larger than {MAX_OPERATOR_BODY} bytes", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _answer(
        self, method: str, path: str, query: dict[str, str], body: bytes, headers: dict[str, str]
    ) -> OpReply:
        if path == "/metrics":
            if method not in ("GET", "HEAD"):
                raise BadRequest(f"{method} is not allowed on /metrics", status=405)
            telemetry = self.telemetry
            if telemetry is None:
                raise BadRequest("telemetry is off for this runtime; no metrics", status=503)
            text = await telemetry.metrics_text()
            return OpReply(200, text.encode(), PROMETHEUS_CONTENT_TYPE)
        if path in ("/_console", "/_console/"):
            return self._file("index.html", method)
        if path.startswith("/_console/"):
            return self._file(path.removeprefix("/_console/"), method)
        endpoint = find_endpoint(method, path.removeprefix("/_motet") or "/")
        if endpoint is None:
            raise BadRequest(f"no operator endpoint {path}", status=404)
        request = OpRequest(
            method=method,
            path=path.removeprefix("/_motet"),
            query=query,
            body=body,
            max_json_depth=self.options.max_json_depth,
        )
        return await endpoint(Operated(self.runtime, self.telemetry), request)

    def _file(self, name: str, method: str) -> OpReply:
        if method not in ("GET", "HEAD"):
            raise BadRequest(f"{method} is not allowed on console files", status=405)
        path = self.files.get(name)  # only files shipped in the console folder
        if path is None:
            raise BadRequest(f"no console file {name!r}", status=404)
        return OpReply(200, path.read_bytes(), CONTENT_TYPES[path.suffix])

    async def _problem(
        self,
        send: ASGISendCallable,
        scope: HTTPScope,
        kind: ProblemKind,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = problem_body(kind, detail, instance=scope["path"], trace_id=new_id())
        await send_response(
            send,
            kind.status,
            body,
            {**(headers or {}), "content-type": PROBLEM_CONTENT_TYPE, **SECURITY_HEADERS},
            head=scope["method"] == "HEAD",
        )


def install_operator(
    app: Any,
    runtime: Runtime,
    options: GatewayOptions,
    access: OperatorAccess,
    *,
    telemetry: Telemetry | None = None,
) -> OperatorASGI:
    """Put the operator in front of a built gateway app (`build_app`'s QuartTrio)."""
    operator = OperatorASGI(
        runtime, app.asgi_app, access=access, options=options, telemetry=telemetry
    )
    app.asgi_app = operator
    return operator
