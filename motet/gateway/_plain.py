"""motet's gateway as a plain ASGI app, with no web framework under it.

`gateway_app` is `MotetASGI` over `NoRoute`, a fallback that answers what no step serves:
a problem+json 404 with the trace id header for HTTP, the lifespan protocol, and a refused
websocket. `motet start` and `open_runtime(serve=...)` serve this app (with the operator in
front); `build_app` and `mount` put the same `MotetASGI` in front of a quart-trio app, for
users who add their own routes. Not loading Quart (with Flask, werkzeug and hypercorn's
asyncio worker) keeps about 13 MiB out of every instance's resident memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cattrs
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from .._envelope import new_id
from ..actors._dispatcher import Dispatcher
from ..steps._http import HttpInvoker
from ..steps._model import Step
from ._asgi import MotetASGI, send_problem
from ._exchange import discard_body, header_map
from ._invoker import as_invoker
from ._openapi import OpenApiBody
from ._options import GatewayOptions
from ._problem import NOT_FOUND
from ._report import OnHttp
from ._routes import collect_routes
from ._trace import accept_trace_id

if TYPE_CHECKING:
    from ..streams import StreamService

__all__ = ["NoRoute", "gateway_app"]


class NoRoute:
    """The ASGI app behind `MotetASGI` when nothing else is: every request it gets has no
    route."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000, "reason": ""})  # a 403
        elif scope["type"] == "http":
            header = self.options.trace_header
            trace_id = accept_trace_id(header_map(scope["headers"]).get(header)) or new_id()
            # Read what the client sends first (bounded), so the connection stays usable.
            await discard_body(
                receive, seconds=self.options.read_timeout, limit=self.options.max_body_size
            )
            await send_problem(
                send,
                scope,
                NOT_FOUND,
                f"no route for {scope['path']}",
                trace_id=trace_id,
                headers={header: trace_id},
            )


def gateway_app(
    steps: Sequence[Step],
    invoker: HttpInvoker | Dispatcher,
    *,
    converter: cattrs.Converter,
    options: GatewayOptions | None = None,
    streams: StreamService | None = None,
    on_http: OnHttp | None = None,
) -> MotetASGI:
    """An ASGI app serving every HTTP trigger of `steps` (and the OpenAPI document), with
    problem+json errors and the trace id header on every response. Serve it with
    `motet.gateway.serve`. With `streams` (a runtime's), it also serves
    `/_streams/{name}/{group}` (SSE and WebSocket). `on_http` is told of every HTTP
    request it answers. Its `__call__` returns the coroutine that answers instead of being
    an `async def` (one frame fewer per request): a server that guesses the interface from
    that must be told it is ASGI 3 (`serve` does; hypercorn's own `serve` takes
    `mode="asgi"`)."""
    options = options or GatewayOptions()
    routes = collect_routes(steps)
    openapi = OpenApiBody(routes, options) if options.openapi_path is not None else None
    runner = as_invoker(invoker)
    endpoint = None
    if streams is not None:  # a project without streams never loads their modules
        from ._streams import stream_endpoint

        endpoint = stream_endpoint(streams, runner, options)
    return MotetASGI(
        routes,
        runner,
        converter=converter,
        options=options,
        fallback=NoRoute(options),
        openapi=openapi,
        streams=endpoint,
        on_http=on_http,
    )
