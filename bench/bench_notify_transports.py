"""Cross-process notification on one host: a unix datagram, a FIFO, inotify on a file.

    .venv/bin/python bench/bench_notify_transports.py [--count 300] [--rate 100]

What the SQLite doorbell (`motet/backends/_sqlite_doorbell.py`) chose among. A waiting
process (a blocking read, as a trio task's socket wait ends in one) is notified `--count` times
at `--rate` per second by another process; latency = arrival - `time.time()` taken just
before the notifying call (carried in the notification, or for inotify appended to the
watched file; writes that land before the watcher reads its events make one wake-up, which
measures the newest). The three run interleaved, one notification each in turn, so load hits all
alike. p50 / p99 per transport.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_STAMP = struct.Struct("<d")
_IN_MODIFY = 0x00000002


def _inotify() -> tuple[int, int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init()
    return libc, fd


def _listen(kind: str, where: str, count: int) -> None:
    """The waiting process: print one latency (s) per notification."""
    out: list[float] = []
    if kind == "dgram":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(where)
        print("ready", flush=True)
        for _ in range(count):
            data = sock.recv(64)
            out.append(time.time() - _STAMP.unpack(data)[0])
    elif kind == "fifo":
        print("ready", flush=True)
        with open(where, "rb", buffering=0) as fifo:
            for _ in range(count):
                data = fifo.read(_STAMP.size)
                out.append(time.time() - _STAMP.unpack(data)[0])
    else:
        libc, fd = _inotify()
        libc.inotify_add_watch(fd, os.fsencode(where), _IN_MODIFY)  # type: ignore[attr-defined]
        print("ready", flush=True)
        # Unread identical events coalesce: one wake-up may stand for several writes, so
        # each wake-up measures the newest stamp and the loop ends at the last one.
        with open(where, "rb") as watched:
            seen = 0
            while seen < count:
                os.read(fd, 4096)
                now = time.time()
                size = os.fstat(watched.fileno()).st_size // _STAMP.size
                if size > seen:
                    watched.seek((size - 1) * _STAMP.size)
                    out.append(now - _STAMP.unpack(watched.read(_STAMP.size))[0])
                    seen = size
    print(" ".join(f"{x:.6f}" for x in out), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "listen":
        _listen(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"dgram": f"{tmp}/d.sock", "fifo": f"{tmp}/f.fifo", "inotify": f"{tmp}/wal"}
        os.mkfifo(paths["fifo"])
        Path(paths["inotify"]).write_bytes(b"")
        listeners = {
            kind: subprocess.Popen(
                [sys.executable, __file__, "listen", kind, path, str(args.count)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for kind, path in paths.items()
        }
        for p in listeners.values():
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        fifo = os.open(paths["fifo"], os.O_WRONLY)
        wal = os.open(paths["inotify"], os.O_WRONLY | os.O_APPEND)
        start = time.monotonic() + 0.2
        for i in range(args.count):
            for kind in paths:  # interleaved
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay / len(paths))
                stamp = _STAMP.pack(time.time())
                if kind == "dgram":
                    sender.sendto(stamp, paths["dgram"])
                elif kind == "fifo":
                    os.write(fifo, stamp)
                else:
                    os.write(wal, stamp)
        for kind, p in listeners.items():
            out, _ = p.communicate(timeout=60)
            lat = sorted(float(x) * 1e3 for x in out.split())
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            print(f"{kind:8}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  ({len(lat)} notifications)")
        os.close(fifo)
        os.close(wal)


if __name__ == "__main__":
    main()
