"""Redis worker: drain rate and enqueue -> handler latency of `motet start`, one process.

    .venv/bin/python bench/bench_redis_worker.py [--jobs 20000] [--rounds 3]
        [--base /path/to/other/checkout] [--concurrency 10] [--prefetch N]

Starts a private redis-server on a free port with persistence switched off (`--save ""
--appendonly no`; redis-server and redis-cli must be on PATH) and writes a project of one
queue step whose handler only appends (kind, enqueue time, handler start) to a record file
with one O_APPEND write. For each checkout (this one, and --base when given, interleaved
round by round):

  drain    a producer emits --jobs jobs (one `runtime.emit` each), then the worker
           (`motet --project P start --port 0 --backend redis://...`) is started and drains
           them: jobs/s = (N - 1) / (last handler start - first handler start);
  latency  with that worker idle, a producer emits 200 jobs at 100/s (open loop); latency =
           handler start - time.time() taken just before the emit: p50 / p99.

The worker's CPU time per drained job (user + system, from /proc, from the first job's
start on) is printed beside the rate, and Redis's own (`INFO cpu`, over the same span); the
load average is printed with every round. --prefetch sets the queue's `prefetch` (how many
deliveries the step leases beyond its free handlers; default: as many as its concurrency).

With --profile, each round also drains --jobs and 3 x --jobs jobs with the worker's main
thread under cProfile (CPU time, `time.thread_time`) and prints the difference per job:
Python calls and profiled CPU per drained job, without start-up, figures that the machine's
load does not move (the profiler inflates the CPU figure several times; compare it only
with another checkout's).
"""

from __future__ import annotations

import argparse
import os
import pstats
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REC = struct.Struct("<Bdd")  # kind, enqueue time, handler start (time.time())

STEP = """
import os, struct, time
from motet import queue

config = {"name": "BenchJob", "triggers": [queue("bench")]}
_REC = struct.Struct("<Bdd")
_fd = os.open(os.environ["BENCH_REC"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


async def handler(job, ctx):
    os.write(_fd, _REC.pack(job["kind"], job["ts"], time.time()))
"""

# The worker under cProfile (main thread CPU time), its stats written when it stops.
PROFILED = r"""
import cProfile, sys, time
out = sys.argv[1]
sys.argv = ["motet", *sys.argv[2:]]
from motet.cli import main
profiler = cProfile.Profile(time.thread_time)
profiler.enable()
try:
    main()
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(out)
"""

PRODUCER = r"""
import sys, time
import trio
import motet
from motet import QueueOptions
from motet.backends import Subscription

url, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

async def main():
    async with motet.open_runtime([], backend=url) as runtime:
        await runtime.backend.declare([Subscription("bench", "BenchJob", QueueOptions())])
        start = time.perf_counter() + 0.05
        for i in range(n):
            if rate:
                await trio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            await runtime.emit("bench", {"kind": 2 if rate else 1, "ts": time.time()})

trio.run(main)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def records(path: Path) -> list[tuple[int, float, float]]:
    data = path.read_bytes() if path.exists() else b""
    return [REC.unpack_from(data, i * REC.size) for i in range(len(data) // REC.size)]


def wait_for(path: Path, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while (path.stat().st_size if path.exists() else 0) < count * REC.size:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(records(path))} of {count} jobs ran within {limit} s")
        time.sleep(0.01)


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_cpu(port: int) -> float:
    """Redis's CPU time so far (user + system, s)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "cpu"], check=True, capture_output=True, text=True
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


def one_run(
    checkout: Path,
    url: str,
    port: int,
    jobs: int,
    folder: Path,
    conc: int,
    profile: str = "",
    prefetch: int | None = None,
) -> dict:
    subprocess.run(["redis-cli", "-p", str(port), "FLUSHALL"], check=True, capture_output=True)
    project = folder / "project"
    (project / "steps").mkdir(parents=True, exist_ok=True)
    (project / "steps" / "bench_step.py").write_text(STEP)
    queue = f"concurrency = {conc}\n" + ("" if prefetch is None else f"prefetch = {prefetch}\n")
    (project / "motet.toml").write_text(f'steps = "steps"\n\n[queue]\n{queue}')
    rec = folder / "jobs.rec"
    rec.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_REC=str(rec))
    python = str(checkout / ".venv/bin/python")
    produce = [python, "-c", PRODUCER, url]
    subprocess.run([*produce, str(jobs), "0"], check=True, cwd=project, env=env,
                   capture_output=True)  # fmt: skip
    command = [str(checkout / ".venv/bin/motet"), "--project", str(project), "start", "--port",
               "0", "--backend", url]  # fmt: skip
    if profile:
        command = [python, "-c", PROFILED, profile, *command[1:]]
    worker = subprocess.Popen(
        command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(rec, 1, 60)
        cpu = -cpu_of(worker.pid)  # from the first job on: without the start-up
        server_cpu = -redis_cpu(port)
        wait_for(rec, jobs, 300)
        cpu += cpu_of(worker.pid)
        server_cpu += redis_cpu(port)
        if not profile:
            subprocess.run([*produce, "200", "100"], check=True, cwd=project, env=env,
                           capture_output=True)  # fmt: skip
            wait_for(rec, jobs + 200, 30)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait()
    got = records(rec)
    starts = sorted(t for kind, _, t in got if kind == 1)
    lat = sorted(t - ts for kind, ts, t in got if kind == 2)
    if profile:
        return {}
    return {
        "drain": (len(starts) - 1) / (starts[-1] - starts[0]),
        "cpu": cpu / jobs,
        "redis": server_cpu / jobs,
        "p50": lat[len(lat) // 2],
        "p99": lat[int(len(lat) * 0.99)],
    }


def profiled(
    checkout: Path, url: str, port: int, jobs: int, folder: Path, conc: int, prefetch: int | None
) -> tuple:
    """(Python calls, profiled CPU s) per job: 3 x jobs minus jobs, so start-up cancels out."""
    totals = []
    for n in (jobs, 3 * jobs):
        out = folder / "worker.prof"
        out.unlink(missing_ok=True)
        one_run(checkout, url, port, n, folder, conc, profile=str(out), prefetch=prefetch)
        stats = pstats.Stats(str(out))
        totals.append((sum(v[0] for v in stats.stats.values()), stats.total_tt))  # type: ignore[attr-defined]
    (calls_a, cpu_a), (calls_b, cpu_b) = totals
    return (calls_b - calls_a) / (2 * jobs), (cpu_b - cpu_a) / (2 * jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--prefetch", type=int, help="the queue's prefetch (default: unset)")
    parser.add_argument("--base", type=Path, help="another motet checkout (with its .venv)")
    parser.add_argument("--profile", action="store_true", help="Python calls per drained job")
    args = parser.parse_args()
    checkouts = {"motet": ROOT} if args.base is None else {"base": args.base, "motet": ROOT}
    figures: dict[str, list[dict]] = {name: [] for name in checkouts}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp, "--logfile", os.path.join(tmp, "log")],
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        try:
            time.sleep(0.3)
            for n in range(args.rounds):
                loads.append(os.getloadavg()[0])
                for name, checkout in checkouts.items():
                    conc, prefetch = args.concurrency, args.prefetch
                    run = one_run(checkout, url, port, args.jobs, Path(tmp), conc, "", prefetch)
                    if args.profile:
                        run["calls"], run["pcpu"] = profiled(
                            checkout, url, port, args.jobs, Path(tmp), conc, prefetch
                        )
                    figures[name].append(run)
                    extra = (
                        f"  {run['calls']:.1f} calls/job  profiled {run['pcpu'] * 1e6:.0f} us/job"
                        if args.profile
                        else ""
                    )
                    print(
                        f"round {n + 1} load {loads[-1]:.2f} {name:6} drain {run['drain']:8,.0f}/s"
                        f"  cpu {run['cpu'] * 1e6:4.0f} us/job (redis {run['redis'] * 1e6:2.0f})"
                        f"  p50 {run['p50'] * 1e3:.2f} ms"
                        f"  p99 {run['p99'] * 1e3:.2f} ms{extra}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait()
    print(f"\nmedians of {args.rounds} rounds, load average {min(loads):.2f}-{max(loads):.2f}")
    for name, runs in figures.items():
        keys = ("drain", "cpu", "redis", "p50", "p99")
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        calls = (
            f"  {statistics.median(r['calls'] for r in runs):.1f} calls/job" if args.profile else ""
        )
        print(
            f"  {name:6} drain {med['drain']:8,.0f}/s  cpu {med['cpu'] * 1e6:.0f} us/job  "
            f"(redis {med['redis'] * 1e6:.0f})  "
            f"p50 {med['p50'] * 1e3:.2f} ms  p99 {med['p99'] * 1e3:.2f} ms{calls}"
        )
    if args.base is not None:
        ratio = statistics.median(
            a["drain"] / b["drain"] for a, b in zip(figures["motet"], figures["base"], strict=True)
        )
        print(f"  drain motet / base (same round): {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
