"""Serving an app on hypercorn's trio worker, inside the caller's nursery."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
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


def listen_socket(options: GatewayOptions, backlog: int) -> socket.socket:
    """The listening socket, bound here rather than by hypercorn so that a bind failure is
    one plain GatewayError and the failed socket is closed (hypercorn leaves it open)."""
    if options.listen_fd is not None:
        return inherited_socket(options.listen_fd)
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((options.host, options.port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise GatewayError(
            f"cannot listen on {options.bind}: {exc.strerror or exc}; choose "
            "another port or host (port 0 picks a free one)"
        ) from exc
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """A duplicate of the listening socket `fd` (the caller keeps the original open, so
    serving again later works); refuses an fd that is not a listening TCP socket."""
    try:
        copy = os.dup(fd)
    except OSError as exc:
        raise GatewayError(
            f"cannot serve inherited socket fd {fd}: {exc.strerror or exc}; "
            "expected an open listening TCP socket"
        ) from exc
    try:
        sock = socket.socket(fileno=copy)
    except OSError as exc:
        os.close(copy)
        raise GatewayError(
            f"cannot serve inherited socket fd {fd}: {exc.strerror or exc}; "
            "expected an open listening TCP socket"
        ) from exc
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.close()
        raise GatewayError(
            f"cannot serve inherited socket fd {fd}: expected a listening "
            f"TCP socket, got type {sock.type!r} (listening: {bool(listening)})"
        )
    sock.setblocking(False)
    return sock


async def serve(
    app: Any,
    options: GatewayOptions | None = None,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` (any ASGI app; usually `build_app(...)`) until `shutdown_trigger` returns
    or the caller cancels. `await nursery.start(serve, app, options)` returns the bound URLs
    once the socket listens (`port=0` picks a free port).

    After the trigger, no new connection is accepted and in-flight requests get
    `options.graceful_timeout` seconds. A quart-trio app is switched to the keep-alive-safe
    connection class first (see `_connection`); a bind failure raises GatewayError.
    """
    options = options or GatewayOptions()
    if isinstance(app, QuartTrio):
        make_keep_alive_safe(app)
    config = hypercorn_config(options)
    sock = listen_socket(options, config.backlog)
    try:
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, None),
            config,
            sockets=Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[]),
            shutdown_trigger=shutdown_trigger,
            task_status=task_status,
        )
    finally:
        sock.close()
