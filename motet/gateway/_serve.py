"""Serving an app on hypercorn's trio worker, inside the caller's nursery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart_trio import QuartTrio

from .._errors import GatewayError
from ._connection import make_keep_alive_safe
from ._options import GatewayOptions


def hypercorn_config(options: GatewayOptions) -> Config:
    config = Config()
    config.bind = [options.bind]
    config.keep_alive_timeout = options.keep_alive_timeout
    config.graceful_timeout = options.graceful_timeout
    config.accesslog = None
    # A Logger instance is used as is by hypercorn; None silences it (its default prints
    # to stderr).
    config.errorlog = options.error_log
    return config


async def serve(
    app: Any,
    options: GatewayOptions | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` (any ASGI app; usually `build_app(...)`) until `shutdown_trigger` returns
    or the caller cancels. `await nursery.start(serve, app, options)` returns the bound URLs
    once the sockets listen (`options.port = 0` picks a free port).

    After the trigger, no new connection is accepted and in-flight requests get
    `options.graceful_timeout` seconds. A quart-trio app is switched to the keep-alive-safe
    connection class first (see `_connection`); a bind failure raises GatewayError.
    """
    options = options or GatewayOptions()
    if isinstance(app, QuartTrio):
        make_keep_alive_safe(app)
    config = hypercorn_config(options)
    started = False

    class _Started:
        def started(self, value: list[str]) -> None:
            nonlocal started
            started = True
            task_status.started(value)

    try:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger,
                              task_status=_Started())  # type: ignore[arg-type]
    except BaseExceptionGroup as group:  # hypercorn binds inside its nurseries
        bind_error = None if started else group.subgroup(OSError)
        if bind_error is None:
            raise
        first = bind_error.exceptions[0]
        reason = getattr(first, "strerror", None) or first
        raise GatewayError(f"cannot listen on {options.bind}: {reason}; choose another "
                           "port or host (port 0 picks a free one)") from group
