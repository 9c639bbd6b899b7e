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
        runtime: Runtime, shutdown_trigger: Callable[[], Awaitable[Any]], *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        from .gateway import build_app, serve

        assert runtime.dispatcher is not None
        app = build_app(runtime.steps, runtime.dispatcher, converter=runtime.converter,
                        options=options)
        await serve(app, options, shutdown_trigger=shutdown_trigger, task_status=task_status)

    return serve_runtime
