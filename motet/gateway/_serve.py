"""Serving an app on hypercorn's trio machinery, inside the caller's nursery.

`serve` is hypercorn's `worker_serve` cut down to what motet uses (one plain listening
socket, HTTP/1.1) with two changes that need the accept loop itself:

- connections are `_tcp.MotetTCPServer`s (lingering close, send timeout, shutdown without
  cutting requests; see there), counted so the drain knows when the last one is done;
- while draining, new connections are still accepted, and each is answered `503` with
  `Connection: close` and `Retry-After` at once (its request is read first, never run).
  Left in the listen backlog, they would wait unanswered until the socket closed and then
  be reset; with `motet start --instances` the socket outlives every child, so they waited
  for the whole drain.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app

from .._envelope import new_id
from .._errors import GatewayError
from ._options import GatewayOptions
from ._problem import PROBLEM_CONTENT_TYPE, SHUTTING_DOWN, problem_body
from ._tcp import Connections, connection_handler

REFUSAL_READ_TIMEOUT = 1.0  # s a refused connection gets to send its request head
REFUSAL_HEAD_LIMIT = 64 * 1024
ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
ACCEPT_RETRY = 0.1


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
    quart_trio = sys.modules.get("quart_trio")  # an app can only be one if it is loaded
    if quart_trio is not None and isinstance(app, quart_trio.QuartTrio):
        from ._connection import make_keep_alive_safe

        make_keep_alive_safe(app)
    config = hypercorn_config(options)
    sock = listen_socket(options, config.backlog)
    try:
        await _serve_socket(
            # "asgi", not hypercorn's guess from `__call__` being a coroutine function:
            # MotetASGI's returns the coroutine that answers instead of being one.
            wrap_app(app, config.wsgi_max_body_size, "asgi"),
            config,
            options,
            sock,
            shutdown_trigger=shutdown_trigger,
            task_status=task_status,
        )
    finally:
        sock.close()


async def _serve_socket(
    app: AppWrapper,
    config: Config,
    options: GatewayOptions,
    sock: socket.socket,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    config.set_statsd_logger_class(StatsdLogger)
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(app, config, lifespan_state)
    context = WorkerContext(None)
    connections = Connections()
    handler = connection_handler(
        app, config, context, ConnectionState(lifespan_state.copy()), options, connections
    )
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            acceptor = _Acceptor(
                trio.SocketListener(trio.socket.from_stdlib_socket(sock)), handler, options
            )
            accepting = await server_nursery.start(acceptor.run, server_nursery)
            bind = repr_socket_addr(sock.family, sock.getsockname())
            await config.log.info(f"Running on http://{bind} (CTRL + C to quit)")
            task_status.started([f"http://{bind}"])
            if shutdown_trigger is None:
                await trio.sleep_forever()
            await shutdown_trigger()
            acceptor.draining = True
            await context.terminated.set()
            server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
            await connections.drained()
            accepting.cancel()
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


class _Acceptor:
    """Accepts connections: served by `handler`, or refused once `draining` is set."""

    def __init__(
        self,
        listener: trio.SocketListener,
        handler: Callable[[trio.SocketStream], Awaitable[None]],
        options: GatewayOptions,
    ) -> None:
        self.listener = listener
        self.handler = handler
        self.options = options
        self.draining = False

    async def run(
        self,
        handlers: trio.Nursery,
        *,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                try:
                    stream = await self.listener.accept()
                except OSError as exc:
                    if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                        raise
                    await trio.sleep(ACCEPT_RETRY)  # out of file descriptors: wait, retry
                    continue
                if self.draining:
                    handlers.start_soon(_refuse, stream, self.options)
                else:
                    # The handler closes the stream, whatever ends it (`connection_handler`).
                    handlers.start_soon(self.handler, stream)


async def _refuse(stream: trio.SocketStream, options: GatewayOptions) -> None:
    """Read a request head (bounded), answer 503 + Connection: close, close."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        head = b""
        with trio.move_on_after(REFUSAL_READ_TIMEOUT):
            while b"\r\n\r\n" not in head and len(head) < REFUSAL_HEAD_LIMIT:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                head += chunk
        trace_id = new_id()
        body = problem_body(
            SHUTTING_DOWN,
            "the server is shutting down; the request was not run: retry it",
            instance=None,
            trace_id=trace_id,
        )
        response = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"content-type: " + PROBLEM_CONTENT_TYPE.encode() + b"\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\nretry-after: 1\r\n"
            + options.trace_header.encode("latin-1")
            + b": "
            + trace_id.encode()
            + b"\r\n\r\n"
            + body
        )
        with trio.move_on_after(options.send_timeout):
            await stream.send_all(response)
            await stream.send_eof()
            with trio.move_on_after(min(REFUSAL_READ_TIMEOUT, options.linger_timeout)):
                while await stream.receive_some(65536):  # lingering close, briefly
                    pass
    await stream.aclose()
