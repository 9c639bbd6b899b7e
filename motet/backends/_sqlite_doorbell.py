"""The doorbell: tells the other processes on one SQLite file that work may be ready.

A receive waiting in one process cannot see another process's commit until it looks. Each
running `SqliteBackend` binds a unix datagram socket in a folder beside the database
(`<file>-wake/`, or a private folder under the temp dir when that path is too long for a
socket address) and, after each commit that may have made messages ready (`touched`
subscriptions: publishes, retries, releases, fifo groups moving on), sends one datagram
naming those subscriptions to every other socket there. The receiving process wakes the
receivers waiting on those subscriptions at once: a cross-process hand-off costs a datagram
and a trio wake-up instead of up to one poll interval.

The doorbell is a hint, never the only way a wake-up arrives: a datagram may be dropped (a
full socket buffer), a peer may not be listed yet (a process that started a moment ago), or
the platform may have no unix datagram sockets. The backend keeps polling `data_version`,
slowly, as the fallback that catches every commit (see `SqliteOptions.doorbell_poll`).

Why datagrams: a FIFO and inotify on the WAL deliver as fast (p50 0.06-0.09 ms for all three
between two processes, bench/bench_notify_transports.py), so the choice is on semantics. Any
number of producers and consumers share one folder with no server and no reader thread (a
FIFO has one reader; inotify on the WAL fires on every write, leases and acks included,
coalesces, and says nothing of which queue); a datagram names the subscriptions, so an
unrelated consumer is not woken; a dead peer's socket refuses at once and is removed.
bench/bench_sqlite_wakeup.py measures the hand-off against the poll it replaces.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import socket
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import trio

_SUFFIX = ".sock"
_MAX_ADDRESS = 100  # bytes: sun_path holds 108 on Linux, 104 on macOS; keep a margin
_MAX_PAYLOAD = 2048  # bytes of subscription names; beyond it the datagram says "all"
_ALL = b"*"
_RELIST = 64

Ring = Callable[[set[str] | None], None]  # the subscriptions named, or None for all


def doorbell_folder(database: Path) -> Path:
    """Where the sockets for `database` live: beside it, or (a path too long to bind) in a
    folder of the temp dir named after the database's resolved path. Decided on the resolved
    path, so every process on the file picks the same folder however it names the file."""
    resolved = database.resolve()
    beside = Path(f"{resolved}-wake")
    if len(os.fsencode(beside / f"{'0' * 24}{_SUFFIX}")) <= _MAX_ADDRESS:
        return beside
    digest = hashlib.sha1(os.fsencode(resolved)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"motet-wake-{os.getuid()}-{digest}"


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(errno.EPERM, f"{folder} is not a folder owned by this user")


class Doorbell:
    """One process's socket among the peers of one database file. Synchronous `ring`;
    `run` delivers the rings others send to `on_ring` until cancelled."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.folder = Path(f"{database}-wake")  # where `bind` puts the socket (see there)
        self.path: Path | None = None  # our socket, once bound
        self._sock: trio.socket.SocketType | None = None
        self._raw: socket.socket | None = None  # the same socket, for non-blocking drains
        self._sender: socket.socket | None = None
        self._peers: list[str] = []
        self._listed: int | None = None  # the folder's mtime when `_peers` was read
        self._rings = 0
        self.sent = 0
        self.dropped = 0

    @property
    def up(self) -> bool:
        return self._sock is not None

    def bind(self) -> bool:
        """Bind our socket; False (and the backend polls instead) when the platform or the
        folder does not allow it."""
        if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
            return False  # e.g. Windows: no unix datagram sockets
        try:
            self.folder = doorbell_folder(self.database)
            path = self.folder / f"{os.getpid()}-{secrets.token_hex(6)}{_SUFFIX}"
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                raw.setblocking(False)
                for attempt in range(3):
                    _private_folder(self.folder)
                    try:
                        raw.bind(os.fspath(path))
                        break
                    except FileNotFoundError:
                        # The last peer removed the empty folder in between (see close).
                        if attempt == 2:
                            raise
            except OSError:
                raw.close()
                raise
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
        except OSError:
            return False
        self._raw, self._sender, self.path = raw, sender, path
        self._sock = trio.socket.from_stdlib_socket(raw)
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = self._raw = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty: the last peer leaves nothing behind
            self.path = None

    async def run(self, on_ring: Ring) -> None:
        """Deliver rings until cancelled; several queued datagrams make one call."""
        sock, raw = self._sock, self._raw
        if sock is None or raw is None:
            await trio.sleep_forever()
            return
        size = _MAX_PAYLOAD + 16
        while True:
            data = await sock.recv(size)
            keys: set[str] | None = set()
            while True:
                if keys is not None:
                    keys = None if data == _ALL else keys | set(data.decode().split("\n"))
                try:
                    data = raw.recv(size)
                except BlockingIOError:
                    break
            on_ring(keys)

    def ring(self, keys: Iterable[str]) -> None:
        """Tell every other peer that `keys` may have messages ready. Never blocks; called
        in the writer's thread right after the commit."""
        sender = self._sender
        if sender is None:
            return
        payload = "\n".join(keys).encode()
        if len(payload) > _MAX_PAYLOAD:
            payload = _ALL
        for peer in self._current_peers():
            try:
                sender.sendto(payload, peer)
                self.sent += 1
            except (BlockingIOError, InterruptedError):
                self.dropped += 1  # its buffer is full: it has rings to read already
            except (ConnectionRefusedError, FileNotFoundError):
                # A process that died without unbinding (kill -9): nobody reads this socket.
                with contextlib.suppress(OSError):
                    os.unlink(peer)
                self._listed = None
            except OSError:
                self.dropped += 1

    def _current_peers(self) -> list[str]:
        """The other sockets in the folder, listed again only when the folder changed."""
        try:
            mtime = os.stat(self.folder).st_mtime_ns
        except OSError:
            return []
        # A folder's mtime moves in coarse steps (a few ms): two changes within one step look
        # like one, so the list is also read again every _RELIST rings.
        self._rings += 1
        if mtime != self._listed or self._rings % _RELIST == 0:
            own = os.fspath(self.path) if self.path is not None else None
            try:
                names = os.listdir(self.folder)
            except OSError:
                return []
            self._peers = [
                p
                for name in names
                if name.endswith(_SUFFIX) and (p := os.path.join(self.folder, name)) != own
            ]
            self._listed = mtime
        return self._peers
