"""What failing (and middleware-wrapped) requests leave in memory under `motet start`.

    .venv/bin/python bench/bench_failure_memory.py [--seconds 6] [--connections 50]
        [--body-kib 1024] [--routes fail,fail-asyncio,middleware,refused] [--rounds 1]
        [--close] [--compare PYTHON]

A request whose frames end up in a reference cycle is freed only by the garbage collector,
not by reference counting, and `motet start` raises the collector's young threshold: such
requests, their bodies with them, pile up between collections. This drives one route of a
generated project at a time, with `wrk` (`apt-get install -y wrk`) posting a JSON body of
`--body-kib` KiB over `--connections` connections for `--seconds` (with `--close`, each
request on a connection of its own, as clients that send `Connection: close`), and reports:

- the server's VmRSS at the end of the load, then after a collection forced inside the
  served process (a step module of the project collects on SIGUSR1);
- the objects the collector found unreachable during the load (`gc.callbacks`, read from
  the same module): about zero when nothing the requests made was cyclic.

Routes: `fail` (a trio handler that raises: a 500), `fail-asyncio` (the same on asyncio, as
a Motia project runs it), `middleware` (a passing middleware, then a handler that answers
200), `refused` (a body typed as an attrs class, which the posted body does not fit: a 400
before the handler). Each server runs a fresh copy of the project on the default backend
(SQLite) with telemetry on, as users run it. `--compare PYTHON` runs each route a second
time with another interpreter's motet (another checkout's virtualenv), interleaved, so two
versions are measured in the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_rss import byte_compile, free_port, rss_kib, settle, stop, wait_for_port

ROUTES = ("fail", "fail-asyncio", "middleware", "refused")

# The project's steps. `gc_probe_step.py` is imported by `motet start` like any step module, so
# its SIGUSR1 handler and collector callback live in the served process.
STEPS = {
    "gc_probe_step.py": """
import gc, json, os, signal

config = {"name": "GcProbe", "type": "noop"}
_found = {"unreachable": 0, "collections": 0}


def _count(phase, info):
    # Only once start-up's objects are frozen (`motet start` collects, then freezes them
    # before it serves): the collections of the load, not start-up's.
    if phase == "stop" and gc.get_freeze_count():
        _found["unreachable"] += info["collected"] + info["uncollectable"]
        _found["collections"] += 1


def _report(signum, frame):
    report = dict(_found)
    gc.collect()
    report["rss_kib_after_collect"] = int(
        next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS"))
    )
    with open(os.environ["GC_PROBE_OUT"], "w") as out:
        json.dump(report, out)


gc.callbacks.append(_count)
signal.signal(signal.SIGUSR1, _report)
""",
    "fail_step.py": """
from motet import http

config = {"name": "Fail", "triggers": [http("POST", "/fail")]}


async def handler(request, ctx):
    body = request.body
    raise ValueError(f"refused a body of {len(str(body))} characters")
""",
    "fail_asyncio_step.py": """
import asyncio

from motet import http

config = {"name": "FailAsyncio", "triggers": [http("POST", "/fail-asyncio")], "handlers": "asyncio"}


async def handler(request, ctx):
    body = request.body
    await asyncio.sleep(0)
    raise ValueError(f"refused a body of {len(str(body))} characters")
""",
    "refused_step.py": """
import attrs

from motet import http


@attrs.frozen
class Pet:
    name: str
    age: int


config = {"name": "Refused", "triggers": [http("POST", "/refused", body=Pet)]}


async def handler(request, ctx):
    return {"status": 201, "body": {"name": request.body.name}}
""",
    "middleware_step.py": """
from motet import http


async def passes(request, ctx, next):
    return await next()


config = {"name": "Wrapped", "triggers": [http("POST", "/middleware", middleware=[passes])]}


async def handler(request, ctx):
    return {"status": 200, "body": {"size": len(str(request.body))}}
""",
}

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%(body)s"):read("*a")
%(close)s"""


def project(folder: Path) -> Path:
    root = folder / "project"
    shutil.rmtree(root, ignore_errors=True)
    (root / "steps").mkdir(parents=True)
    for name, source in STEPS.items():
        (root / "steps" / name).write_text(source.lstrip())
    return root


def body_file(folder: Path, kib: int) -> Path:
    path = folder / "body.json"
    filler = "x" * max(0, kib * 1024 - 20)
    path.write_text(json.dumps({"filler": filler}))
    return path


def measure(
    python: str, route: str, folder: Path, seconds: float, connections: int, script: Path
) -> dict[str, float]:
    root = project(folder)
    port = free_port()
    report = folder / "gc-probe.json"
    report.unlink(missing_ok=True)
    env = dict(os.environ, GC_PROBE_OUT=str(report))
    cmd = [python, "-m", "motet", "start", "--port", str(port), "--log-level", "error"]
    # From the project folder: `-m` puts the working directory first on sys.path, and this
    # checkout's folder would shadow another interpreter's motet.
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        url = f"http://127.0.0.1:{port}/{route}"
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        answered = re.search(r"(\d+) requests in", out)
        settle(server.pid)
        rss = rss_kib(server.pid)
        server.send_signal(signal.SIGUSR1)
        for _ in range(100):
            if report.exists() and report.stat().st_size:
                break
            time.sleep(0.1)
        probe = json.loads(report.read_text())
        return {
            "requests": int(answered.group(1)) if answered else -1,
            "rss_mib": rss / 1024,
            "rss_after_collect_mib": probe["rss_kib_after_collect"] / 1024,
            "unreachable": probe["unreachable"],
            "collections": probe["collections"],
        }
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--body-kib", type=int, default=1024)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--close", action="store_true", help="one connection per request")
    parser.add_argument("--compare", metavar="PYTHON", help="another interpreter's motet")
    args = parser.parse_args()
    routes = args.routes.split(",")
    unknown = sorted(set(routes) - set(ROUTES))
    if unknown:
        parser.error(f"unknown routes {unknown}; choose from {', '.join(ROUTES)}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    pythons = {"this": sys.executable} | ({"compare": args.compare} if args.compare else {})
    print(
        f"{args.seconds:g} s per run, {args.connections} connections, "
        f"{args.body_kib} KiB bodies{', Connection: close' if args.close else ''}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="motet-failmem-") as tmp:
        folder = Path(tmp)
        for python in pythons.values():
            byte_compile(python, folder)
        script = folder / "post.lua"
        close = 'wrk.headers["Connection"] = "close"\n' if args.close else ""
        script.write_text(LUA % {"body": body_file(folder, args.body_kib), "close": close})
        for n in range(args.rounds):
            for route in routes:
                for name, python in pythons.items():
                    got = measure(python, route, folder, args.seconds, args.connections, script)
                    print(
                        f"round {n + 1}  {route:<13} {name:<8} {got['requests']:>6} requests  "
                        f"RSS {got['rss_mib']:6.1f} MiB  after a collection "
                        f"{got['rss_after_collect_mib']:6.1f} MiB  unreachable objects "
                        f"{got['unreachable']:>7} in {got['collections']} collections",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
