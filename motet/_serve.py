"""Bridge between the runtime and the gateway: serve a runtime's HTTP steps on a socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ._runtime import Runtime
    from .gateway import GatewayOptions


def gateway_for(options: GatewayOptions) -> Callable[..., Awaitable[None]]:
    """A part the runtime starts last (and stops first): `nursery.start(part, runtime, stop)`."""

    async def serve_runtime(
        runtime: Runtime,
        shutdown_trigger: Callable[[], Awaitable[Any]],
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        from .gateway import build_app, serve
        from .gateway._operator import install_operator
        from .gateway._operator_auth import OperatorAccess, check_bind, resolve_token

        assert runtime.dispatcher is not None
        # The operator endpoints (console, metrics, dead letters, state) need a token
        # before they may face the network.
        token = resolve_token(runtime.project.token)
        check_bind(options.host, token)
        app = build_app(
            runtime.steps, runtime.dispatcher, converter=runtime.converter, options=options
        )
        install_operator(app, runtime, options, OperatorAccess(token))
        await serve(app, options, shutdown_trigger=shutdown_trigger, task_status=task_status)

    return serve_runtime
