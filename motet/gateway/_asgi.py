"""motet's routes served straight from ASGI, in front of a quart-trio app.

Quart's request machinery (request context, signals, werkzeug routing, response wrappers)
costs more per request than hypercorn itself; motet's routes need none of it, so they are
answered here and everything else (the host app's own routes, its 404s, lifespan,
websockets) is passed to the wrapped app. Installed as `app.asgi_app`, Quart's documented
place for middleware, so the app stays a QuartTrio and `app.test_client()` exercises this
very path.

A handler is not cancelled when its client disconnects: once the request body has
arrived, the handler runs to the end (its emits and state writes are not left half done)
and the answer is dropped if nobody is there to take it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import cattrs
import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Scope,
)

from .._envelope import new_id
from .._errors import BackendUnavailable
from ..steps._http import HttpInvoker, Request, RequestDeclined
from ._exchange import (
    BodyReader,
    ClientGone,
    Rejected,
    build_request,
    discard_body,
    header_map,
    make_reply,
)
from ._options import GatewayOptions
from ._problem import (
    BACKEND_UNAVAILABLE,
    HANDLER_CUT,
    HANDLER_ERROR,
    HANDLER_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_RESPONSE,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_CONTENT_TYPE,
    ProblemKind,
    problem_body,
)
from ._report import Matched, OnHttp, answer_reported, leave, report, status_reader
from ._routes import Route, RouteTable
from ._trace import accept_trace_id

Headers = list[tuple[bytes, bytes]]
CUT_ANSWER_SECONDS = 1.0  # at most this long to tell a client its handler was cut


def response_messages(
    status: int, body: bytes, headers: Mapping[str, str], *, head: bool = False
) -> tuple[HTTPResponseStartEvent, HTTPResponseBodyEvent]:
    """The two ASGI messages of one complete response. For HEAD the length is the body's,
    but no body is sent; 204 and 304 have neither a body nor a length (RFC 9110 §8.6)."""
    raw: Headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if status in (204, 304):
        body = b""
    else:
        raw.append((b"content-length", str(len(body)).encode()))
    return (
        {"type": "http.response.start", "status": status, "headers": raw, "trailers": False},
        {"type": "http.response.body", "body": b"" if head else body, "more_body": False},
    )


async def send_response(
    send: ASGISendCallable,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    head: bool = False,
) -> None:
    """One complete response (`response_messages`)."""
    start, rest = response_messages(status, body, headers, head=head)
    await send(start)
    await send(rest)


async def send_problem(
    send: ASGISendCallable,
    scope: HTTPScope,
    kind: ProblemKind,
    detail: str,
    *,
    trace_id: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """One `application/problem+json` answer of `kind` about this request."""
    body = problem_body(kind, detail, instance=scope["path"], trace_id=trace_id, extra=extra)
    await send_response(
        send,
        kind.status,
        body,
        {**(headers or {}), "content-type": PROBLEM_CONTENT_TYPE},
        head=scope["method"] == "HEAD",
    )


class MotetASGI:
    """The ASGI app of motet's HTTP triggers; requests it has no route for go to `fallback`.

    `openapi` gives the serialized document served at `options.openapi_path` (under the
    prefix; `_openapi.OpenApiBody`, built on the first request for it), or is None.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        invoker: HttpInvoker,
        *,
        converter: cattrs.Converter,
        options: GatewayOptions,
        fallback: Any,
        prefix: str = "",
        openapi: Callable[[], bytes] | None = None,
        streams: Any = None,
        on_http: OnHttp | None = None,
    ) -> None:
        self.route_table = RouteTable(routes, prefix)
        # `/_streams/{name}/{group}` (SSE and WebSocket): a `_streams.StreamEndpoint`, or None.
        self.streams = streams
        self.invoker = invoker
        self.converter = converter
        self.options = options
        self.fallback = fallback
        self.openapi_path = (
            prefix.rstrip("/") + options.openapi_path
            if openapi is not None and options.openapi_path
            else None
        )
        self.openapi = openapi
        # The runtime's observers, told of every answered request (None: nobody watches).
        self.on_http = on_http

    def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> Awaitable[None]:
        # Not a coroutine of its own: what it decides is synchronous, and it returns the
        # coroutine that answers, so that one frame fewer is resumed at every checkpoint
        # of the request (the body read, the handler's awaits, each send).
        if self.streams is not None and self.streams.handles(scope):
            return self._reported(lambda s: self.streams(scope, receive, s), scope, send)
        if scope["type"] != "http":
            return self.fallback(scope, receive, send)
        method, path = scope["method"], scope["path"]
        raw_path = scope.get("raw_path")
        match = self.route_table.match(
            method, path, raw_path.decode("latin-1") if raw_path else None
        )
        if match is None:
            if path == self.openapi_path and method in ("GET", "HEAD"):
                return self._reported(lambda s: self._send_openapi(scope, s), scope, send)
            return self._reported(lambda s: self.fallback(scope, receive, s), scope, send)
        headers = header_map(scope["headers"])
        trace_id = accept_trace_id(headers.get(self.options.trace_header)) or new_id()
        route = match.route
        leave(
            scope,
            Matched(
                route.path.written if route else None,
                route.step.name if route else None,
                trace_id,
            ),
        )
        if match.route is None:
            allow = ", ".join(match.allowed)
            if method == "OPTIONS":
                headers = {"allow": allow, self.options.trace_header: trace_id}
                return self._reported(lambda s: send_response(s, 204, b"", headers), scope, send)
            detail = f"{method} is not allowed on {path}; allowed: {allow}"
            return self._reported(
                lambda s: self._problem(
                    s, scope, trace_id, METHOD_NOT_ALLOWED, detail, headers={"allow": allow}
                ),
                scope,
                send,
            )
        return self._handle(match.route, match.params, scope, receive, send, headers, trace_id)

    def _reported(
        self,
        answer: Callable[[ASGISendCallable], Awaitable[None]],
        scope: Scope,
        send: ASGISendCallable,
    ) -> Awaitable[None]:
        if self.on_http is None or scope["type"] != "http":
            return answer(send)
        return answer_reported(answer, scope, send, self.on_http)

    async def _handle(
        self,
        route: Route,
        params: dict[str, str],
        scope: HTTPScope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        headers: dict[str, str],
        trace_id: str,
    ) -> None:
        # Reported here rather than by a layer around every request (one frame fewer to
        # resume at each of its checkpoints).
        on_http = self.on_http
        status: Callable[[], int] | None = None
        if on_http is not None:
            send, status = status_reader(send)
        started = trio.current_time()
        try:
            name = route.step.name
            handler_seconds = route.trigger.timeout or self.options.handler_timeout
            reader = BodyReader(self.options.max_body_size)
            rejected: Rejected | None = None
            request: Request | None = None
            failure: BaseException | None = None
            result: Any = None
            # One cancel scope for the request: its deadline is first the body's read deadline,
            # then the handler's. (Entering a cancel scope costs more than the rest of motet's
            # own work on a request, so there is one, not one per phase.)
            read_deadline = started + self.options.read_timeout
            try:
                with trio.CancelScope(deadline=read_deadline) as deadline:
                    try:
                        request = await build_request(
                            route,
                            scope,
                            receive,
                            headers,
                            params,
                            trace_id=trace_id,
                            converter=self.converter,
                            reader=reader,
                            max_depth=self.options.max_json_depth,
                        )
                    except ClientGone:
                        return
                    except Rejected as exc:
                        rejected = exc
                    else:
                        deadline.deadline = trio.current_time() + handler_seconds
                        try:
                            result = await self.invoker.invoke_http(
                                route.step, route.trigger, request
                            )
                        except Exception as exc:
                            failure = exc
                        except BaseExceptionGroup as group:
                            # Cancelled mixed with errors: keep the errors, let the Cancelled reach
                            # the scope that cancelled (ours on timeout; a shutdown otherwise).
                            failure, cancelled = group.split(Exception)
                            if cancelled is not None:
                                raise cancelled from None
            except BaseException as exc:
                if request is not None and _only_cancelled(exc):
                    # Cancelled from outside (the shutdown's graceful deadline, or a hard stop)
                    # while the handler ran: say so rather than leave the client without an
                    # answer; the handler may have done part of its work.
                    await self._cut(send, scope, trace_id, name)
                raise
            if request is None and deadline.cancelled_caught:
                rejected = reader.timed_out(self.options.read_timeout)
            if rejected is not None:
                await self._problem(
                    send,
                    scope,
                    trace_id,
                    rejected.kind,
                    rejected.detail,
                    extra=rejected.extra(),
                    headers={"connection": "close"} if rejected.close else None,
                )
                if rejected.close:
                    await discard_body(
                        receive,
                        seconds=self.options.linger_timeout,
                        limit=self.options.linger_max_bytes,
                    )
                return
            if deadline.cancelled_caught:
                return await self._fail(
                    send,
                    scope,
                    trace_id,
                    name,
                    HANDLER_TIMEOUT,
                    f"the handler of step {name!r} did not answer within {handler_seconds:g} s",
                    f"handler of step {name!r} timed out after {handler_seconds:g} s",
                    failure,
                )
            if isinstance(failure, RequestDeclined):  # the trigger's condition said no
                return await self._problem(send, scope, trace_id, NOT_FOUND, str(failure))
            if failure is not None and _backend_unavailable(failure):
                return await self._fail(
                    send,
                    scope,
                    trace_id,
                    name,
                    BACKEND_UNAVAILABLE,
                    "the backend cannot store writes right now; retry later",
                    f"handler of step {name!r} could not write: {failure}",
                    failure,
                )
            if failure is not None:
                return await self._fail(
                    send,
                    scope,
                    trace_id,
                    name,
                    HANDLER_ERROR,
                    f"the handler of step {name!r} failed",
                    f"handler of step {name!r} failed: {type(failure).__name__}: {failure}",
                    failure,
                )
            try:
                reply = make_reply(result, self.converter)
            except Exception as exc:  # InvalidResponse, or a converter hook that raised
                return await self._fail(
                    send,
                    scope,
                    trace_id,
                    name,
                    INVALID_RESPONSE,
                    f"the handler of step {name!r} returned an invalid response",
                    f"handler of step {name!r} returned an invalid response: {exc}",
                    exc,
                )
            reply.headers[self.options.trace_header] = trace_id
            # The two sends here rather than through send_response: a coroutine less to resume
            # at each checkpoint on the way to the socket, on the path every answer takes.
            start, rest = response_messages(
                reply.status, reply.body, reply.headers, head=scope["method"] == "HEAD"
            )
            await send(start)
            await send(rest)
        finally:
            if on_http is not None and status is not None:
                report(on_http, scope, status(), started)
            # Caught here, their tracebacks hold this frame: without this, each failed or
            # rejected request (its body, its connection's objects) would stay in a reference
            # cycle until the garbage collector's next pass.
            failure = rejected = None

    async def _problem(
        self,
        send: ASGISendCallable,
        scope: HTTPScope,
        trace_id: str,
        kind: ProblemKind,
        detail: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        await send_problem(
            send,
            scope,
            kind,
            detail,
            trace_id=trace_id,
            extra=extra,
            headers={**(headers or {}), self.options.trace_header: trace_id},
        )

    async def _fail(
        self,
        send: ASGISendCallable,
        scope: HTTPScope,
        trace_id: str,
        step: str | None,
        kind: ProblemKind,
        detail: str,
        message: str,
        error: BaseException | None,
    ) -> None:
        """A 5xx: logs `message` (of `step`, or of the gateway itself when None) with a fresh
        error id and answers with that id."""
        error_id = new_id()
        fields: dict[str, Any] = {"error_id": error_id, "path": scope["path"]}
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
        self.invoker.log_error(message, trace_id=trace_id, step=step, exc_info=error, **fields)
        await self._problem(
            send,
            scope,
            trace_id,
            kind,
            f"{detail} (error id {error_id})",
            extra={"error_id": error_id},
        )

    async def _cut(
        self, send: ASGISendCallable, scope: HTTPScope, trace_id: str, step: str
    ) -> None:
        error_id = new_id()
        self.invoker.log_error(
            f"handler of step {step!r} was cut by the server stopping",
            trace_id=trace_id,
            step=step,
            error_id=error_id,
            path=scope["path"],
        )
        with trio.CancelScope(shield=True), trio.move_on_after(CUT_ANSWER_SECONDS):
            await self._problem(
                send,
                scope,
                trace_id,
                HANDLER_CUT,
                f"the server stopped before the handler of step {step!r} finished; it may "
                f"have done part of its work (error id {error_id})",
                extra={"error_id": error_id},
                headers={"connection": "close"},
            )

    async def _send_openapi(self, scope: HTTPScope, send: ASGISendCallable) -> None:
        headers = header_map(scope["headers"])
        trace_id = accept_trace_id(headers.get(self.options.trace_header)) or new_id()
        leave(scope, Matched(None, None, trace_id))
        assert self.openapi is not None
        try:
            body = self.openapi()  # built at the first request (it reads every handler)
        except Exception as exc:  # a schema or source the document builder cannot take
            return await self._fail(
                send,
                scope,
                trace_id,
                None,
                INTERNAL_ERROR,
                "the OpenAPI document could not be built",
                f"building the OpenAPI document failed: {type(exc).__name__}: {exc}",
                exc,
            )
        await send_response(
            send,
            200,
            body,
            {"content-type": "application/json", self.options.trace_header: trace_id},
            head=scope["method"] == "HEAD",
        )


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return False


def _backend_unavailable(error: BaseException) -> bool:
    """The failure is (or was caused by) a backend that cannot take writes (503, not 500)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, BackendUnavailable):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
