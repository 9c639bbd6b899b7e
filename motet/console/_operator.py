"""The operator's side of a served runtime: the console at `/_console`, its JSON API under
`/_motet/...` and Prometheus metrics at `/metrics`, in front of the step routes.

`OperatorASGI` wraps the gateway's ASGI app. Operator paths are answered here, behind the
access rules of `_auth`; every other request goes to the wrapped app and is reported to
the runtime's observers (`on_http`: route, method, status, duration, trace id) for HTTP
spans and metrics: by the gateway itself when it was built with the same observers
(`gateway_app(on_http=...)`, as `motet start` builds it), by this layer otherwise.
Operator requests themselves are not traced (the console polls).

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

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from .._envelope import new_id
from .._observer import HttpExchange, RuntimeView
from ..gateway._asgi import send_problem, send_response
from ..gateway._exchange import BodyReader, ClientGone, Rejected, discard_body, header_map
from ..gateway._options import GatewayOptions
from ..gateway._problem import INTERNAL_ERROR, ProblemKind, http_problem_kind
from ..gateway._report import answer_reported
from ..observe import PROMETHEUS_CONTENT_TYPE
from ._auth import OperatorAccess, token_cookie
from ._op import BadRequest, Operated, OpReply, OpRequest

if TYPE_CHECKING:
    from ..observe import Telemetry

CONSOLE_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
MAX_OPERATOR_BODY = 256 * 1024
UNAUTHORIZED = ProblemKind("unauthorized", 401, "Unauthorized")
FORBIDDEN_HOST = ProblemKind("forbidden-host", 403, "Forbidden")
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
        runtime: RuntimeView,
        inner: Any,
        *,
        access: OperatorAccess,
        options: GatewayOptions,
        telemetry: Telemetry | None = None,
        on_http: Callable[[HttpExchange], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.inner = inner
        self.access = access
        self.options = options
        self.telemetry = telemetry  # what /metrics, the logs and the traces read
        self.on_http = on_http  # the runtime's observers; None when none watches
        # The gateway reports its requests itself when it was given the same observers.
        self.inner_reports = on_http is not None and getattr(inner, "on_http", None) == on_http
        self.files = console_files()

    def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> Awaitable[None]:
        # Not a coroutine of its own: it returns the one that answers, so a step request
        # resumes no frame of this layer at its checkpoints.
        if scope["type"] != "http":
            return self.inner(scope, receive, send)
        if is_operator_path(scope["path"]):
            return self._operator(scope, receive, send)
        if self.on_http is None or self.inner_reports:
            return self.inner(scope, receive, send)
        return answer_reported(
            lambda observed: self.inner(scope, receive, observed), scope, send, self.on_http
        )

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
        except ClientGone:
            return  # nobody to answer
        except Rejected as exc:  # the gateway's own refusal of a body (413), read no further
            await self._problem(send, scope, exc.kind, exc.detail, {"connection": "close"})
            return await discard_body(
                receive,
                seconds=self.options.linger_timeout,
                limit=self.options.linger_max_bytes,
            )
        except BadRequest as exc:
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
            self.runtime.logger().error(
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
        return await BodyReader(MAX_OPERATOR_BODY).read(receive, headers)

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
        from ._api import find_endpoint  # loaded for the first operator request

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
        await send_problem(
            send,
            scope,
            kind,
            detail,
            trace_id=new_id(),
            headers={**(headers or {}), **SECURITY_HEADERS},
        )


def install_operator(
    app: Any,
    runtime: RuntimeView,
    options: GatewayOptions,
    access: OperatorAccess,
    *,
    telemetry: Telemetry | None = None,
    on_http: Callable[[HttpExchange], None] | None = None,
) -> OperatorASGI:
    """Put the operator in front of a built gateway app (`build_app`'s QuartTrio)."""
    operator = OperatorASGI(
        runtime,
        app.asgi_app,
        access=access,
        options=options,
        telemetry=telemetry,
        on_http=on_http,
    )
    app.asgi_app = operator
    return operator
