"""SQLite drain through `motet start`: a backlog enqueued by another process, then drained by
the worker command as shipped, at the default durability (WAL, synchronous=FULL).

    .venv/bin/python bench/bench_sqlite_drain.py [--messages 20000] [--rounds 3]
        [--instances 1] [--against ../other-checkout/.venv/bin/python]

The workload of the peer benchmark of issue 16 (config `sqlite-default`), rebuilt here so it
needs nothing outside this repository:
- a project folder on disk (a temp folder, not tmpfs: fsync costs what it costs) with one
  queue step on topic "bench", concurrency 10 (the default), whose handler appends one
  17-byte record (kind, enqueue time, handler start time) to a file in /dev/shm with one
  O_APPEND write;
- a producer process opens the project's default `.motet/motet.db`, declares the project's
  subscriptions (as `motet emit` does) and emits `--messages` jobs, one `runtime.emit` each
  (each returns once its message is committed): enqueue = messages / that time;
- then `motet --project DIR start --port 0 [--instances N]` is started and the records are
  counted until all are there: drain = (N - 1) / (last handler start - first handler start).
  The worker's CPU (user + system, all its processes, from /proc) is printed per
  message.

`--against PYTHON` runs another checkout's venv (its `motet` script beside it) in the same
run, alternating with this one round by round, and prints the ratio of the medians: the
machine's load swings too much for figures from different runs to be compared.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REC = struct.Struct("<Bdd")

STEP = """
import os, struct, time
from motet import queue

config = {"name": "BenchJob", "triggers": [queue("bench")]}
_REC = struct.Struct("<Bdd")
_fd = None


async def handler(job, ctx):
    global _fd
    now = time.time()
    if _fd is None:
        _fd = os.open(os.environ["BENCH_REC"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, _REC.pack(int(job["kind"]), float(job["ts"]), now))
"""

PRODUCER = """
import sys, time
import trio
import motet
from motet.backends import MemoryBackend
from motet.project import load_project
from motet.steps import load_steps

async def main(proj, n):
    config = load_project(proj)
    plan = motet.Runtime(load_steps(proj / config.steps), backend=MemoryBackend(), project=config)
    options = motet.RuntimeOptions(log_stream=sys.stderr)
    async with motet.open_runtime([], backend="sqlite", root=proj, options=options) as runtime:
        await runtime.backend.declare(plan.subscriptions)
        t0 = time.perf_counter()
        for _ in range(n):
            await runtime.emit("bench", {"kind": 1, "ts": time.time()})
        print(time.perf_counter() - t0)

from pathlib import Path
trio.run(main, Path(sys.argv[1]), int(sys.argv[2]))
"""


def make_project(root: Path) -> Path:
    proj = root / "app"
    (proj / "steps").mkdir(parents=True)
    (proj / "steps" / "bench_step.py").write_text(textwrap.dedent(STEP))
    (proj / "motet.toml").write_text('steps = "steps"\n')
    return proj


def tree_cpu(root: int) -> float:
    """User + system CPU seconds of a process and its live descendants (the worker and the
    instances it starts, which run in sessions of their own)."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])  # field 4 (ppid), counted after the ")"
        ticks[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 0)
        return False

    return sum(t for pid, t in ticks.items() if descends(pid)) / os.sysconf("SC_CLK_TCK")


def one_run(python: str, n: int, instances: int) -> tuple[float, float, float]:
    """(enqueue/s, drain/s, worker CPU ms per message)."""
    with tempfile.TemporaryDirectory(prefix="motet-drain-") as tmp:
        proj = make_project(Path(tmp))
        rec = Path(tempfile.mkstemp(prefix="motet-drain-", dir="/dev/shm")[1])
        try:
            env = {**os.environ, "BENCH_REC": str(rec)}
            env.pop("PYTHONPATH", None)
            out = subprocess.run(
                [python, "-c", PRODUCER, str(proj), str(n)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            enqueue = n / float(out.stdout.split()[-1])
            motet = str(Path(python).parent / "motet")
            argv = [motet, "--project", str(proj), "start", "--port", "0"]
            if instances > 1:
                argv += ["--instances", str(instances)]
            worker = subprocess.Popen(
                argv,
                env=env,
                cwd=tmp,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                # CPU is counted from the first record on (start-up and imports excluded).
                first: tuple[int, float] | None = None
                deadline = time.monotonic() + 300
                while (done := rec.stat().st_size // REC.size) < n:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise RuntimeError(f"drain stopped at {done}")
                    if first is None and done:
                        first = (done, tree_cpu(worker.pid))
                    time.sleep(0.01)
                assert first is not None
                cpu = (tree_cpu(worker.pid) - first[1]) / (n - first[0])
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
            data = rec.read_bytes()
            starts = sorted(REC.unpack_from(data, i * REC.size)[2] for i in range(n))
            drain = (n - 1) / (starts[-1] - starts[0])
            return enqueue, drain, cpu * 1000
        finally:
            rec.unlink(missing_ok=True)


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--against", help="python of another checkout's venv, run alternately")
    args = parser.parse_args()
    pythons = {"this": sys.executable}
    if args.against:
        pythons["against"] = args.against
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in pythons}
    for round_ in range(args.rounds):
        order = list(pythons.items())
        if round_ % 2:
            order.reverse()  # neither checkout always runs first
        for name, python in order:
            before = load()
            got = one_run(python, args.messages, args.instances)
            results[name].append(got)
            print(
                f"round {round_ + 1} {name:8s} enqueue {got[0]:7.0f}/s  drain {got[1]:7.0f}/s  "
                f"worker CPU {got[2]:.3f} ms/msg  ({before})",
                flush=True,
            )
    medians = {
        name: [statistics.median(r[i] for r in runs) for i in range(3)]
        for name, runs in results.items()
    }
    for name, (enqueue, drain, cpu) in medians.items():
        print(f"median {name:8s} enqueue {enqueue:7.0f}/s  drain {drain:7.0f}/s  CPU {cpu:.3f} ms")
    if "against" in medians:
        this, other = medians["this"], medians["against"]
        print(
            f"this/against, ratio of the medians: enqueue x{this[0] / other[0]:.2f}  "
            f"drain x{this[1] / other[1]:.2f}  CPU per message x{this[2] / max(other[2], 1e-9):.2f}"
        )
        # Each round's two runs are neighbours in time: their ratio shares the load.
        pairs = list(zip(results["this"], results["against"], strict=True))
        ratios = [statistics.median(a[i] / max(b[i], 1e-9) for a, b in pairs) for i in range(3)]
        print(
            f"this/against, median of the rounds' ratios: enqueue x{ratios[0]:.2f}  "
            f"drain x{ratios[1]:.2f}  CPU per message x{ratios[2]:.2f}"
        )


if __name__ == "__main__":
    main()
