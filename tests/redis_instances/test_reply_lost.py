"""A Redis crash between running a `receive` script and delivering its reply.

Found by test_failures' Redis restart test: about two runs in three, one message that was
in flight when Redis was SIGKILLed was handled only after a whole lease (30 s by default),
as attempt 2, although the instances were back within a second. Its `receive` script had
run (and, with `appendfsync always`, was on disk), the reply was lost with the connection,
`RedisLink.call` retried the receive as a new call, and the messages the first call leased
were held by nobody until the lease ran out.

Fixed by giving each receive script call an op id: the script remembers what it leased under
P:op:<id>, and the retry (same id) hands out those deliveries again, same receipts and attempts.
Reproduced here deterministically, in-process, through a TCP proxy that forwards a receive
to Redis, waits for Redis's reply (so the script has run) and then cuts the connection
instead of passing the reply on.
"""

from __future__ import annotations

import trio

from motet._clock import WallClock
from motet._envelope import Envelope, QueueOptions, Subscription
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer

_CHUNK = 65536


class ReplyCutter:
    """A TCP proxy to Redis that, once armed, drops the reply to the next request whose
    bytes contain every one of `marker` and closes that connection (as a Redis crash right
    after the command ran would)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.marker: tuple[bytes, ...] = ()
        self.cut = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        drop_reply = trio.Event()
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(self._up, client, server, drop_reply, nursery.cancel_scope)
            nursery.start_soon(self._down, server, client, drop_reply, nursery.cancel_scope)

    async def _up(
        self,
        client: trio.SocketStream,
        server: trio.SocketStream,
        drop_reply: trio.Event,
        scope: trio.CancelScope,
    ) -> None:
        try:
            while chunk := await client.receive_some(_CHUNK):
                if self.marker and all(part in chunk for part in self.marker):
                    self.marker = ()
                    drop_reply.set()
                await server.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    async def _down(
        self,
        server: trio.SocketStream,
        client: trio.SocketStream,
        drop_reply: trio.Event,
        scope: trio.CancelScope,
    ) -> None:
        try:
            while chunk := await server.receive_some(_CHUNK):
                if drop_reply.is_set():
                    self.cut.set()
                    break  # Redis answered: the command ran; its reply never arrives
                await client.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()


async def test_a_receive_whose_reply_is_lost_hands_out_its_messages_on_the_retry(
    redis: RedisServer,
) -> None:
    cutter = ReplyCutter(redis.port)
    jobs = Subscription("jobs", "Worker", QueueOptions(lease=30))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(cutter.run)
        backend = RedisBackend(f"redis://127.0.0.1:{port}/0", prefix="cut")
        await nursery.start(backend.run, WallClock())
        await backend.declare([jobs])
        await backend.publish([Envelope(topic="jobs", data={"n": 1}, trace_id="t")])

        # A script call (EVALSHA) naming the subscription: the receive (the wake-up read
        # names it too, in its doorbell key, but with XREAD).
        cutter.marker = (b"EVAL", jobs.key.encode())
        got = []
        with trio.move_on_after(5.0):  # a sixth of the lease: plenty for a retry
            got = await backend.receive(jobs, 10)
        assert cutter.cut.is_set(), "the proxy never cut a receive's reply"
        nursery.cancel_scope.cancel()
    assert [(d.envelope.data, d.attempt) for d in got] == [({"n": 1}, 1)]
