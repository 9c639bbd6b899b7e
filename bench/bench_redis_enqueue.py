"""Redis enqueue, one call per job from a sequential producer, next to its ceiling and a peer.

    .venv/bin/python bench/bench_redis_enqueue.py [--jobs 5000] [--rounds 5]
        [--base /path/to/other/checkout] [--peer-venv ~/.cache/peerbench-venvs/dramatiq]

Starts a private redis-server on a free port with persistence switched off (`--save ""
--appendonly no`: what is compared is the client, not the disk) and, in rounds, one producer
process each (interleaved, so load on the machine hits all of them alike):

  raw XADD   one XADD round trip per job, redis-py + hiredis (sync): the ceiling here;
  dramatiq   `actor.send(...)` per job, its Redis broker (the best peer on this workload);
  base       `await runtime.emit("bench", {...})` with the motet checkout at --base;
  motet      the same with this checkout.

Each producer declares the subscription first (as `motet emit` does), warms up, then sends
--jobs jobs and reports jobs/s, the producer-side latency of one call (p50 / p99) and the
CPU time per job (`time.process_time`). With --profile, the motet producers also report
Python calls per job (cProfile, in a second pass after the timed one). The summary prints
medians over the rounds and the ratios within each round, with the load average beside
them. The first two need a venv with dramatiq, redis-py and hiredis (`--peer-venv`; e.g.
`python -m venv v && v/bin/pip install 'dramatiq[redis]' hiredis`); redis-server and
redis-cli must be on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A producer prints one line, RESULT and JSON: rate, p50, p99 (s), cpu (s per job), calls (per job).
_REPORT = r"""
import json, sys, time
def report(lat, cpu, wall, calls=None):
    lat.sort()
    n = len(lat)
    print("RESULT", json.dumps({"rate": n / wall, "p50": lat[n // 2], "p99": lat[int(n * 0.99)],
                      "cpu": cpu / n, "calls": calls}))
"""

RAW = (
    _REPORT
    + r"""
import redis
url, n = sys.argv[1], int(sys.argv[2])
r = redis.Redis.from_url(url)
for _ in range(200):
    r.xadd("raw:bench", {"e": json.dumps({"kind": 1, "ts": time.time()})})
lat, c0, w0 = [], time.process_time(), time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    r.xadd("raw:bench", {"e": json.dumps({"kind": 1, "ts": time.time()})})
    lat.append(time.perf_counter() - t)
report(lat, time.process_time() - c0, time.perf_counter() - w0)
"""
)

DRAMATIQ = (
    _REPORT
    + r"""
import dramatiq
from dramatiq.brokers.redis import RedisBroker
url, n = sys.argv[1], int(sys.argv[2])
dramatiq.set_broker(RedisBroker(url=url))

@dramatiq.actor(queue_name="bench", max_retries=0)
def handler(kind, ts):
    pass

for _ in range(200):
    handler.send(0, time.time())
lat, c0, w0 = [], time.process_time(), time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    handler.send(1, time.time())
    lat.append(time.perf_counter() - t)
report(lat, time.process_time() - c0, time.perf_counter() - w0)
"""
)

MOTET = (
    _REPORT
    + r"""
import cProfile, pstats
import trio
import motet
from motet import QueueOptions
from motet.backends import Subscription
url, n, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"

async def main():
    async with motet.open_runtime([], backend=url) as runtime:
        await runtime.backend.declare([Subscription("bench", "BenchJob", QueueOptions())])
        for _ in range(200):
            await runtime.emit("bench", {"kind": 0, "ts": time.time()})
        lat, c0, w0 = [], time.process_time(), time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            await runtime.emit("bench", {"kind": 1, "ts": time.time()})
            lat.append(time.perf_counter() - t)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        calls = None
        if profile:  # a second pass, so that the profiler's cost is in no figure above
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(n):
                await runtime.emit("bench", {"kind": 1, "ts": time.time()})
            profiler.disable()
            calls = sum(v[0] for v in pstats.Stats(profiler).stats.values()) / n
        report(lat, cpu, wall, calls)

trio.run(main)
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int, folder: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", folder, "--logfile", os.path.join(folder, "log")],
    )  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.02)
    server.kill()
    raise SystemExit("redis-server did not start")


def run(python: str, code: str, url: str, jobs: int, profile: bool, cwd: Path) -> dict[str, float]:
    out = subprocess.run(
        [python, "-c", code, url, str(jobs), "1" if profile else "0"],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    [line] = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    result: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", type=Path, help="another motet checkout (with its .venv)")
    parser.add_argument(
        "--peer-venv",
        type=Path,
        default=Path.home() / ".cache/peerbench-venvs/dramatiq",
        help="a venv with dramatiq and redis-py (hiredis)",
    )
    parser.add_argument("--profile", action="store_true", help="count motet's calls per job")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    peer = str(args.peer_venv / "bin/python")
    if not os.access(peer, os.X_OK):
        raise SystemExit(
            f"no Python at {peer}: the ceiling and the peer run in a venv with dramatiq and "
            "redis-py; make one (python -m venv v && v/bin/pip install 'dramatiq[redis]' "
            "hiredis) and pass --peer-venv v, or run the peer harness once, which leaves one "
            "at the default path"
        )
    producers: dict[str, tuple[str, str, Path]] = {
        "raw XADD": (peer, RAW, ROOT),
        "dramatiq": (peer, DRAMATIQ, ROOT),
    }
    if args.base is not None:
        producers["base"] = (str(args.base / ".venv/bin/python"), MOTET, args.base)
    producers["motet"] = (sys.executable, MOTET, ROOT)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in producers}
    loads = []
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        server = start_redis(port, folder)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            for n in range(args.rounds):
                loads.append(os.getloadavg()[0])
                for name, (python, code, cwd) in producers.items():
                    profile = args.profile and code is MOTET
                    figures[name].append(run(python, code, url, args.jobs, profile, cwd))
                    subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=True,
                                   capture_output=True)  # fmt: skip
                row = "  ".join(f"{k} {v[-1]['rate']:,.0f}/s" for k, v in figures.items())
                print(f"round {n + 1}, load {loads[-1]:.2f}: {row}", flush=True)
        finally:
            server.terminate()
            server.wait()
    print(f"\n{args.jobs} jobs per producer, median of {args.rounds} rounds, "
          f"load average {min(loads):.2f}-{max(loads):.2f}")  # fmt: skip
    med = {
        name: {
            key: statistics.median(r[key] for r in runs) for key in ("rate", "p50", "p99", "cpu")
        }
        for name, runs in figures.items()
    }
    for name, m in med.items():
        calls = [r["calls"] for r in figures[name] if r.get("calls")]
        extra = f"  {statistics.median(calls):.0f} calls/job" if calls else ""
        print(
            f"  {name:9} {m['rate']:8,.0f} jobs/s  p50 {m['p50'] * 1e3:.3f} ms  "
            f"p99 {m['p99'] * 1e3:.3f} ms  cpu {m['cpu'] * 1e6:.0f} us/job{extra}"
        )
    # Ratios within each round (same moment, same load), then their median.
    for name in [n for n in ("motet", "base") if n in figures]:
        for other in ("dramatiq", "raw XADD", "base"):
            if other == name or other not in figures:
                continue
            ratio = statistics.median(
                a["rate"] / b["rate"] for a, b in zip(figures[name], figures[other], strict=True)
            )
            print(f"  {name} / {other}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
