"""One client connection: hypercorn's trio `TCPServer`, with motet's rules for closing it.

A subclass (used by `_serve.serve`, never installed process-wide), because the rules below
are about the socket, under the HTTP parser, where an ASGI app cannot reach:

- **Lingering close.** When the server ends a connection while the client may still be
  sending (an early 413 or 408, a protocol error, a request framed two ways), it sends its
  FIN, then reads and discards what still arrives until the client closes, for at most
  `linger_timeout` seconds and `linger_max_bytes` bytes (as nginx's lingering close does).
  Closing at once would leave unread bytes in the kernel, which answers them with a reset:
  a client that writes its whole body before reading (Python's urllib) would get
  `BrokenPipeError` or `ConnectionResetError` instead of the answer.
- **Send timeout.** Each write of a response must be taken by the client within
  `send_timeout` seconds; a client that stops reading is reset (SO_LINGER 0, so the kernel
  frees the unsent bytes too) instead of holding the response in memory forever.
- **Shutdown without cutting requests.** When the server drains, hypercorn closed idle
  keep-alive connections at once, even when a request had arrived on one in the same
  instant, after its handler had started, so the request ran and its answer was lost. Here
  an idle connection stays usable while requests are still in flight elsewhere (its next
  request is answered, with `Connection: close`), a request whose bytes are already waiting
  gets a moment to be read, and a connection is closed as idle only if no request is being
  served on it.
- **HTTP/1.1 only**, with `_h11.MotetH11Protocol` (TLS and HTTP/2 are a proxy's job).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.trio.worker_context import TrioSingleTask, WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState
from hypercorn.utils import parse_socket_addr

from ._h11 import MotetH11Protocol
from ._options import GatewayOptions

# While draining, how long bytes already waiting on an idle connection get to become a
# request before the connection is closed anyway.
WAITING_REQUEST_GRACE = 1.0


class MotetTCPServer(TCPServer):
    protocol: MotetH11Protocol  # type: ignore[assignment]

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: ConnectionState,
        stream: trio.SocketStream,
        *,
        options: GatewayOptions,
        connections: Connections | None = None,
    ) -> None:
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self.options = options
        self._reading = False
        self._lingering = False
        self._discarded = 0
        self._linger_task = TrioSingleTask()
        self.connections = connections or Connections()
        self._busy = False  # a request is in flight on this connection

    async def run(self) -> None:
        sock = self.stream.socket
        try:
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            async with TaskGroup() as task_group:
                self._task_group = task_group
                self.protocol = MotetH11Protocol(
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    False,
                    client,
                    server,
                    self.protocol_send,
                    options=self.options,
                )
                await self.protocol.initiate()
                await self.idle_task.restart(self._task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            self._set_busy(False)
            await self._close()
            # The protocol holds this server's bound `protocol_send`, and the server holds
            # the protocol: a cycle per connection, left for the collector. Every task that
            # could use it ended with the task group.
            self.__dict__.pop("protocol", None)
            self._task_group = None  # type: ignore[assignment]

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            if not event.data:
                # h11's end of a response framed by Content-Length is no bytes at all:
                # nothing to write, so no lock, deadline and checkpoint for it (one of the
                # three sends of every response).
                return
            data = event.data
            if not self.send_lock.locked():
                # The common case: the kernel's send buffer takes the whole answer at once.
                # Written without a checkpoint, a lock or a deadline: the checkpoint alone
                # has trio's scheduler park and resume the task (with the rest, about 300
                # Python calls per request under cProfile); the deadline below is only
                # needed when the socket would block.
                # No other send can be in progress (the lock is free) and nothing awaits
                # between the test and the write, so writes stay in order.
                written = self._write_nowait(data)
                if written is None:
                    await self.protocol.handle(Closed())
                    return
                if written == len(data):
                    return
                data = data[written:]
            broken = False
            # Shielded as hypercorn does (a cancelled app must not cut a response in half,
            # nor the rest of one written in part above), but with motet's own deadline.
            with trio.CancelScope(
                shield=True, deadline=trio.current_time() + self.options.send_timeout
            ) as scope:
                async with self.send_lock:
                    try:
                        await self.stream.send_all(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        broken = True
            if scope.cancelled_caught:
                await self._reset_slow_reader()
            elif broken:
                await self.protocol.handle(Closed())
        elif isinstance(event, Closed):
            self._set_busy(False)
            await self._close()
            await self.protocol.handle(Closed())
        elif isinstance(event, Updated):
            if event.idle:
                self._set_busy(False)
                await self.idle_task.restart(self._task_group, self._idle_timeout)
            else:
                self._set_busy(True)
                await self.idle_task.stop()

    def _write_nowait(self, data: bytes) -> int | None:
        """Bytes the socket took without blocking (0 when it would block or is closed, so
        the caller's send reports it); None when the connection is broken."""
        fd = self.stream.socket.fileno()
        if fd < 0:
            return 0
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError:  # reset or broken pipe (Python ignores SIGPIPE)
            return None

    def _set_busy(self, busy: bool) -> None:
        if busy and not self._busy:
            self.connections.request_started()
        elif self._busy and not busy:
            self.connections.request_ended()
        self._busy = busy

    async def _read_data(self) -> None:
        self._reading = True
        try:
            while True:
                timeout = self.config.read_timeout
                deadline = trio.current_time() + timeout if timeout else math.inf
                try:
                    with trio.CancelScope(deadline=deadline) as scope:
                        data = await self.stream.receive_some(MAX_RECV)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    break
                if scope.cancelled_caught:
                    break
                if self._lingering:
                    self._discarded += len(data)
                    if not data or self._discarded > self.options.linger_max_bytes:
                        break
                    continue
                await self.protocol.handle(RawData(bytes(data)))
                if not data:
                    break
        finally:
            self._reading = False
        await self._linger_task.stop()
        await self.idle_task.stop()
        await self.protocol.handle(Closed())

    def _client_may_be_sending(self) -> bool:
        """The request was not read to its end (or its framing is in doubt)."""
        protocol = self.protocol
        connection = protocol.connection
        if not isinstance(connection, h11.Connection):  # a websocket's pass-through
            return False
        return (
            connection.their_state in (h11.SEND_BODY, h11.ERROR)
            or protocol.close_after_response
            or bool(connection.trailing_data[0])
        )

    async def _close(self) -> None:
        if self._reading and not self._lingering and self._client_may_be_sending():
            # The reader is still running: it discards what the client still sends and
            # closes when the client does (or when the watchdog below ends the wait).
            self._lingering = True
            await self._send_eof()
            await self._linger_task.restart(self._task_group, self._end_lingering)
            await self.protocol.close_reading()
            return
        await self._send_eof()
        await self.stream.aclose()
        protocol = getattr(self, "protocol", None)  # None when the socket failed at once
        if protocol is not None:
            await protocol.close_reading()  # a reader parked on h11's PAUSED state ends

    async def _send_eof(self) -> None:
        with contextlib.suppress(
            trio.BrokenResourceError, trio.BusyResourceError, trio.ClosedResourceError
        ):
            await self.stream.send_eof()

    async def _end_lingering(self) -> None:
        await trio.sleep(self.options.linger_timeout)
        await self.stream.aclose()  # the reader wakes with ClosedResourceError and ends

    async def _reset_slow_reader(self) -> None:
        log = self.options.error_log
        if log is not None:
            log.info(
                "closed a connection: the client did not take a response within %g s "
                "(GatewayOptions.send_timeout)",
                self.options.send_timeout,
            )
        with contextlib.suppress(OSError):
            self.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        self._lingering = True  # nothing more to read for
        await self.stream.aclose()
        await self.protocol.close_reading()
        await self.protocol.handle(Closed())

    async def _idle_timeout(self) -> None:
        keep_alive = self.config.keep_alive_timeout
        with trio.move_on_after(keep_alive):
            await self.context.terminated.wait()
        if self.context.terminated.is_set():
            # Draining. While requests are still in flight elsewhere the drain goes on
            # anyway, so this idle connection stays usable: its client's next request is
            # answered (with Connection: close) instead of meeting a closed socket. A
            # request starting here stops this task (hypercorn's `Updated(idle=False)`).
            with trio.move_on_after(keep_alive):
                await self.connections.quiet()
            if self._bytes_waiting():  # a request is arriving: let the reader take it
                with trio.move_on_after(min(WAITING_REQUEST_GRACE, keep_alive)):
                    await trio.sleep_forever()
        with trio.CancelScope(shield=True):
            # No checkpoint between this test and the close: a request being served is
            # never cut, whatever woke this task.
            if self.protocol.stream is not None:
                return
            await self._initiate_server_close()

    def _bytes_waiting(self) -> bool:
        if self.protocol.connection.trailing_data[0]:
            return True
        fd = self.stream.socket.fileno()
        if fd < 0:  # already closed
            return False
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))


class Connections:
    """The connections being served and the requests in flight on them. `drained()` returns
    when no connection is left; `quiet()` when no request is in flight."""

    def __init__(self) -> None:
        self.count = 0
        self.requests = 0
        self._drained = trio.Event()
        self._drained.set()
        self._quiet = trio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def open(self) -> Iterator[None]:
        self.count += 1
        if self.count == 1:
            self._drained = trio.Event()
        try:
            yield
        finally:
            self.count -= 1
            if self.count == 0:
                self._drained.set()

    def request_started(self) -> None:
        self.requests += 1
        if self.requests == 1:
            self._quiet = trio.Event()

    def request_ended(self) -> None:
        self.requests -= 1
        if self.requests == 0:
            self._quiet.set()

    async def drained(self) -> None:
        await self._drained.wait()

    async def quiet(self) -> None:
        await self._quiet.wait()


def connection_handler(
    app: AppWrapper,
    config: Config,
    context: WorkerContext,
    state: ConnectionState,
    options: GatewayOptions,
    connections: Connections,
) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """The accept loop's handler: one `MotetTCPServer` per accepted stream, counted in
    `connections`; the stream is closed (forcefully, if need be) when it ends. The
    connection's task itself: a frame between it and the server's reader would be resumed
    at every read."""

    async def handle(stream: trio.SocketStream) -> None:
        with connections.open():
            try:
                server = MotetTCPServer(
                    app, config, context, state, stream, options=options, connections=connections
                )
                await server.run()
            finally:
                await trio.aclose_forcefully(stream)

    return handle
