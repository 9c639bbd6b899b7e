"""A lean Redis connection for the backend's hot path: the scripts every message goes
through and the blocking read an idle receiver waits in.

Why not coredis here: coredis spends 0.37-0.45 ms of CPU per command on this machine
(connection pool, a writer task, anyio timers and memory streams, telemetry checks), more
than the 0.3 ms an fsync'd write takes inside Redis, so a message's enqueue -> receive
latency could not get under a millisecond through it. `Wire` leaves writing and parsing
RESP to hiredis (the Redis project's C code): one socket, calls pipelined on it in order,
replies matched to callers first-in first-out, read by the caller itself when it is alone
on the wire (a sequential producer: one scheduler round per call) or else by a reader task.
coredis stays the client for everything else (state, dead letters, the wake-up watcher).

Failures: a broken socket fails every call in flight with `WireError` (a ConnectionError,
so `RedisLink.call` treats it as Redis being unreachable and retries); the next call
connects again. A socket Redis closed while nobody was reading is noticed by the next call
(its read meets the end of the stream), which is then retried on a new connection. An
error reply raises `ReplyError`, except LOADING (Redis replaying its AOF after a
restart), which is a `WireError` too.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import trio

from .._errors import BackendUnavailable
from .._redact import redact

try:
    import hiredis
except ImportError:  # `import motet` works without it; a Redis backend says what to install
    hiredis = None  # type: ignore[assignment]


class WireError(ConnectionError):
    """The connection to Redis failed (or Redis is still loading): the call may be retried."""


class ReplyError(Exception):
    """Redis answered a call with an error reply."""


# What a broken connection raises (WireError is an OSError too).
_BROKEN: tuple[type[BaseException], ...] = (
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    *((hiredis.ProtocolError,) if hiredis is not None else ()),
)


@attrs.frozen
class Address:
    """Where and how to connect, read from a redis://, rediss:// or unix:// URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host:port
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Address:
        """The address in `url`; ValueError saying what is wrong with a malformed one (the
        URL shown without its credentials)."""
        parts = urlsplit(url)
        shown = redact(url)
        query = parse_qs(parts.query)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(f"Redis URL {shown!r} names no socket: unix:///path/to/redis.sock")
            return cls(
                path=unquote(parts.path),
                db=_db(shown, query.get("db", [""])[0]),
                username=username,
                password=password,
            )
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"Redis URL {shown!r} must start with redis://, rediss:// or unix://")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ValueError(f"Redis URL {shown!r} has a port that is not a number") from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=_db(shown, parts.path.lstrip("/") or query.get("db", [""])[0]),
            username=username,
            password=password,
            tls=parts.scheme == "rediss",
        )


def _db(url: str, text: str) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(f"Redis URL {url!r}: the database must be a number, got {text!r}")
    return int(text)


def require_hiredis() -> None:
    if hiredis is None:
        raise BackendUnavailable(
            "the Redis backend needs the hiredis package, which is not installed: "
            "pip install 'motet[redis]'"
        )


def encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings (str as UTF-8, numbers as `str` has
    them). hiredis writes it in C; what it does not take (a bool, None) is written as `str`
    has it here."""
    try:
        packed: bytes = hiredis.pack_command(args)
    except TypeError:
        return _encode(args)
    return packed


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Reply:
    """One call's reply. `done` says it came (or the connection broke); the event a waiter
    parks on is made only when someone has to wait (a caller reading its own reply never
    does), since an Event per call costs more than the flag."""

    __slots__ = ("done", "error", "event", "value")

    def __init__(self) -> None:
        self.done = False
        self.event: trio.Event | None = None
        self.value: Any = None
        self.error: BaseException | None = None

    def taken_error(self) -> BaseException:
        """The error, taken off the reply to be raised: its traceback will hold the frame
        of the caller, which holds the reply, so a reply that kept it would be a cycle."""
        error, self.error = self.error, None
        assert error is not None
        return error

    def finish(self) -> None:
        self.done = True
        if self.event is not None:
            self.event.set()

    async def wait(self) -> None:
        if not self.done:
            self.event = self.event or trio.Event()
            await self.event.wait()


class _Conn:
    __slots__ = ("fd", "parked", "reader", "reading", "scope", "stream", "waiting", "wake")

    def __init__(self, stream: trio.abc.Stream, reader: Any) -> None:
        self.stream = stream
        # A plain socket's descriptor, written and read without trio's stream (see `Wire`);
        # None for TLS, which goes through the stream.
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self.reader = reader
        self.scope = trio.CancelScope()  # of the reader task, which closes the stream
        self.waiting: deque[_Reply] = deque()  # callers, in the order their bytes went out
        # Someone reads the replies of `waiting`: the reader task, or a caller reading its own
        # reply. At most one at a time; whenever `waiting` is not empty, one is.
        self.reading = False
        self.wake = trio.Event()  # set when the reader task should read for `waiting`
        self.parked = 0  # how many times a read waited for the socket


class Wire:
    """One connection to Redis.

    Pipelined (the default): `call` may be used by many tasks at once. A caller that finds
    nobody reading reads its own reply (the common case of one call at a time: no hop
    through another task); replies of calls made meanwhile are handed out by a reader task in
    `nursery`, and closing the wire (or a broken socket) ends it. A plain socket is written
    with one `send` when nothing else is being written, and read with `recv` first and
    `wait_readable` only when nothing has come yet: trio's stream would add two scheduler
    rounds per call (a checkpoint after each successful send and recv). A caller cancelled
    while its bytes were half written breaks the connection rather than leave a torn
    command on it; one cancelled while waiting just drops its reply (and, if it was reading,
    leaves the reading to the reader task).

    Not pipelined (for blocking reads): one call at a time reads its own reply, saving the
    hop through a reader task; a call cancelled before its reply came closes the connection
    (Redis then drops a blocked read without serving it)."""

    def __init__(
        self,
        address: Address,
        nursery: trio.Nursery,
        connect_timeout: float,
        *,
        pipelined: bool = True,
    ) -> None:
        require_hiredis()
        self.address = address
        self.pipelined = pipelined
        self._nursery = nursery
        self._connect_timeout = connect_timeout
        self._conn: _Conn | None = None
        self._send_lock = trio.Lock()
        self._connect_lock = trio.Lock()
        self.client_id: int | None = None  # Redis's id of this connection (CLIENT UNBLOCK)

    async def call(self, *args: Any) -> Any:
        conn = self._conn or await self._connect()
        if not self.pipelined:
            return await self._call_alone(conn, args)
        # One command (the common call): as `calls`, without its lists.
        reply = _Reply()
        await self._send(conn, encode(args), (reply,))
        if not conn.reading:
            await self._read_own(conn, reply)
        if not reply.done:
            await reply.wait()
        if reply.error is not None:
            raise reply.taken_error()
        return reply.value

    async def calls(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one write; their replies (an error reply raises the first)."""
        if not self.pipelined:
            return [await self.call(*command) for command in commands]
        conn = self._conn or await self._connect()
        # Encoded before anything is queued on the connection: an argument without a UTF-8
        # form fails this caller alone, instead of breaking the connection of every call.
        data = b"".join([encode(command) for command in commands])
        replies = [_Reply() for _ in commands]
        await self._send(conn, data, replies)
        last = replies[-1]
        if not conn.reading:
            await self._read_own(conn, last)
        # Replies are handed out in the order they were queued: all of these are done once
        # the last one is.
        if not last.done:
            await last.wait()
        for reply in replies:
            if reply.error is not None:
                raise reply.taken_error()
        return [reply.value for reply in replies]

    async def _send(self, conn: _Conn, data: bytes, replies: Sequence[_Reply]) -> None:
        """Queue `replies` and write `data`, their commands."""
        if self._conn is not conn:
            raise WireError(f"the connection to Redis at {self._where()} was lost")
        lock = self._send_lock
        if conn.fd is not None and not lock.locked():
            # Nobody's bytes are going out: write at once, holding the lock only if the
            # kernel does not take them all (no other task runs before that is known).
            conn.waiting.extend(replies)
            try:
                sent = os.write(conn.fd, data)
            except BlockingIOError:
                sent = 0
            except BaseException as exc:
                self._break(conn, exc)
                raise
            if sent == len(data):
                return
            lock.acquire_nowait()
            try:
                await self._write(conn, memoryview(data)[sent:])
            except BaseException as exc:
                self._break(conn, exc)
                raise
            finally:
                lock.release()
            return
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()  # another caller's bytes are still going out
            if self._conn is not conn:
                lock.release()
                raise WireError(f"the connection to Redis at {self._where()} was lost") from None
        try:
            conn.waiting.extend(replies)
            await self._write(conn, data)
        except BaseException as exc:
            self._break(conn, exc)
            raise
        finally:
            lock.release()

    async def _write(self, conn: _Conn, data: bytes | memoryview) -> None:
        if conn.fd is None:
            await conn.stream.send_all(data)
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(conn.fd, view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(conn.fd)

    async def _receive(self, conn: _Conn) -> bytes | bytearray:
        data: bytes | bytearray
        if conn.fd is None:
            data = await conn.stream.receive_some(65536)
        else:
            while True:
                try:
                    data = os.read(conn.fd, 65536)
                    break
                except BlockingIOError:
                    conn.parked += 1
                    await trio.lowlevel.wait_readable(conn.fd)
        if not data:
            raise WireError(f"Redis at {self._where()} closed the connection")
        return data

    async def _read_own(self, conn: _Conn, last: _Reply) -> None:
        """Read replies until `last` (this caller's) has come, then leave the replies others
        wait for to the reader task."""
        parked = conn.parked
        conn.reading = True
        try:
            while not last.done:
                self._hand_out(conn, await self._receive(conn))
        except _BROKEN as exc:
            self._break(conn, exc)
        finally:
            conn.reading = False
            if conn.waiting:
                conn.wake.set()
        if conn.parked == parked and conn.fd is not None:
            await trio.lowlevel.checkpoint()  # the reply was there at once: still yield once

    def _hand_out(self, conn: _Conn, data: bytes | bytearray) -> None:
        waiting, reader = conn.waiting, conn.reader
        reader.feed(data)
        while (value := reader.gets()) is not False:
            if not waiting:
                raise WireError(f"Redis at {self._where()} sent a reply nobody asked for")
            reply = waiting.popleft()
            if isinstance(value, hiredis.ReplyError):
                reply.error = self._error(value)  # made, not raised: no frame to hold
            else:
                reply.value = value
            reply.finish()

    async def _call_alone(self, conn: _Conn, args: tuple[Any, ...]) -> Any:
        command = encode(args)
        async with self._send_lock:
            if self._conn is not conn:
                raise WireError(f"the connection to Redis at {self._where()} was lost")
            try:
                await self._write(conn, command)
                while (value := conn.reader.gets()) is False:
                    conn.reader.feed(await self._receive(conn))
            except BaseException as exc:
                await self._drop(conn)
                if isinstance(exc, _BROKEN):
                    raise WireError(
                        f"the connection to Redis at {self._where()} broke: {exc!r}"
                    ) from exc
                raise
        return self._outcome(value)

    def _outcome(self, value: Any) -> Any:
        """A reply's value, or its error raised."""
        if isinstance(value, hiredis.ReplyError):
            raise self._error(value)
        return value

    def _error(self, value: hiredis.ReplyError) -> WireError | ReplyError:
        """What an error reply raises: a loading server is unavailable (retried), the rest
        is the command's error."""
        text = str(value)
        if text.startswith("LOADING"):
            return WireError(f"Redis at {self._where()}: {text}")
        return ReplyError(text)

    async def script(self, source: str, sha: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, loading the script first if Redis does not know it (after a restart)."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", source)
        return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def connect(self) -> None:
        """Connect now (calls connect by themselves when needed)."""
        if self._conn is None:
            await self._connect()

    async def aclose(self) -> None:
        conn = self._conn
        if conn is None:
            await trio.lowlevel.checkpoint()
        elif self.pipelined:
            self._break(conn, WireError("the connection was closed"))
            await trio.lowlevel.checkpoint()
        else:
            await self._drop(conn)

    async def _drop(self, conn: _Conn) -> None:
        """Close an unpipelined connection (it has no reader task to do it)."""
        self._conn = None
        self.client_id = None
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(conn.stream)

    async def _connect(self) -> _Conn:
        async with self._connect_lock:
            if self._conn is not None:
                return self._conn
            address = self.address
            try:
                with trio.fail_after(self._connect_timeout):
                    stream: trio.abc.Stream
                    if address.path is not None:
                        stream = await trio.open_unix_socket(address.path)
                    elif address.tls:
                        stream = await trio.open_ssl_over_tcp_stream(
                            address.host, address.port, ssl_context=ssl.create_default_context()
                        )
                    else:
                        stream = await trio.open_tcp_stream(address.host, address.port)
                    reader = hiredis.Reader(encoding="utf-8")
                    try:
                        self.client_id = await self._handshake(stream, reader)
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
            except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
                raise WireError(
                    f"cannot connect to Redis at {self._where()}: {exc or type(exc).__name__}"
                ) from exc
            conn = self._conn = _Conn(stream, reader)
            if self.pipelined:
                self._nursery.start_soon(self._read, conn)
            return conn

    async def _handshake(self, stream: trio.abc.Stream, reader: Any) -> int:
        address = self.address
        commands: list[tuple[Any, ...]] = []
        if address.password is not None:
            user = (address.username,) if address.username else ()
            commands.append(("AUTH", *user, address.password))
        if address.db:
            commands.append(("SELECT", address.db))
        commands.append(("CLIENT", "ID"))
        await stream.send_all(b"".join(encode(c) for c in commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            data = await stream.receive_some(65536)
            if not data:
                raise WireError(f"Redis at {self._where()} closed the connection at once")
            reader.feed(data)
            while (value := reader.gets()) is not False:
                replies.append(value)
        for command, value in zip(commands, replies, strict=True):
            if isinstance(value, hiredis.ReplyError):
                raise ReplyError(f"Redis at {self._where()} refused {command[0]}: {value}")
        return int(replies[-1])

    async def _read(self, conn: _Conn) -> None:
        try:
            with conn.scope:
                await self._replies(conn)
        finally:
            self._break(conn, WireError(f"the connection to Redis at {self._where()} closed"))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(conn.stream)

    async def _replies(self, conn: _Conn) -> None:
        try:
            while True:
                while conn.reading or not conn.waiting:
                    await conn.wake.wait()
                    conn.wake = trio.Event()
                conn.reading = True
                try:
                    while conn.waiting:
                        self._hand_out(conn, await self._receive(conn))
                finally:
                    conn.reading = False
        except _BROKEN as exc:
            self._break(conn, exc)

    def _break(self, conn: _Conn, cause: BaseException) -> None:
        """Fail every call waiting on `conn` and drop it; the next call reconnects."""
        if self._conn is conn:
            self._conn = None
            self.client_id = None
        message = (
            str(cause)
            if isinstance(cause, WireError)
            else f"the connection to Redis at {self._where()} broke: {cause!r}"
        )
        while conn.waiting:
            reply = conn.waiting.popleft()
            # Each caller its own error: one object raised in several tasks would add every
            # raiser's frames to the traceback the others report.
            reply.error = WireError(message)
            reply.finish()
        conn.scope.cancel()  # the reader task closes the stream

    def _where(self) -> str:
        a = self.address
        return a.path if a.path is not None else f"{a.host}:{a.port}"


def sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()
