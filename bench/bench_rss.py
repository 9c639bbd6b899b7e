"""Resident memory of `motet start` on the example app: idle, then after 20k and 100k requests,
beside a bare hypercorn trio ASGI app driven the same way in the same run.

    .venv/bin/python bench/bench_rss.py [--requests 20000,100000] [--connections 10]

The example app is this repository's own project (motet.toml + steps/), copied to a temporary
folder so its SQLite files start empty; `motet start` runs it on the default backend (SQLite)
with telemetry on, as a user runs it. The driver is `wrk` (`apt-get install -y wrk`) with a
Lua script that alternates `POST /pets` (state write + emit, two queue steps consume it) and
`GET /hello` (an enqueue, one queue step consumes it) and stops after the given number of
answers. After each stage the driver waits until the server's CPU time stops moving (its
queue steps have drained what the requests emitted), then reads VmRSS from /proc.

The bare app answers the same two routes (parses the POST body, answers JSON) and is the
floor: what hypercorn's trio worker itself holds and gains under the same traffic.

Each interpreter's motet package is byte-compiled first, as pip does when it installs one:
an editable checkout run with PYTHONDONTWRITEBYTECODE set (as on the machine these figures
were taken on) would otherwise compile every module from source at each start, which leaves
about 0.4 MiB more resident. The project's steps are compiled at start, as on a first run.

`--compare PYTHON` adds a variant `compare`: the same `motet start` run by another
interpreter (another checkout's virtualenv), so two versions are measured in one run.

`--linger SECONDS` also reads VmRSS that long after each reading, the traffic stopped: what
a server holds once it has been quiet for a while (the SQLite writer hands back its page
cache 10 to 20 s after its last commit: `--linger 25`), printed as a second line per variant.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = '{"name": "Rex", "breed": "beagle", "age": 3}'
LUA = """
local body = '%(body)s'
local limit = %(limit)d
local sent, got, failed = 0, 0, 0
request = function()
  sent = sent + 1
  if sent %% 2 == 0 then
    return wrk.format("GET", "/hello?name=rex")
  end
  return wrk.format("POST", "/pets", {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  got = got + 1
  if status >= 300 then failed = failed + 1 end
  if got >= limit then  -- wrk itself would wait out its -d duration
    io.write(string.format("answered %%d failed %%d\\n", got, failed))
    io.flush()
    os.exit(0)
  end
end
"""


def bare_app() -> Any:
    import json

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = json.loads(body) if body else {"message": "Hello rex!"}
        out = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def serve_bare(port: int) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.errorlog = None
    config.accesslog = None
    trio.run(serve, bare_app(), config)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else -1


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def settle(pid: int, *, quiet_for: float = 1.0, limit: float = 120.0) -> None:
    """Wait until the process has used (almost) no CPU for `quiet_for` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_ticks(pid)
        time.sleep(quiet_for)
        if cpu_ticks(pid) - before <= 2:  # ticks are 10 ms: at most 2% of a CPU
            return


def wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    import socket

    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError("the server exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not listen")


def drive(port: int, count: int, connections: int, folder: Path) -> int:
    script = folder / f"rss-{count}.lua"
    script.write_text(LUA % {"body": BODY, "limit": count})
    cmd = ["wrk", "-t1", f"-c{connections}", "-d600s", "-s", str(script)]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True
    ).stdout
    done = re.search(r"answered (\d+) failed (\d+)", out)
    if done is None or int(done.group(2)):
        raise RuntimeError(f"wrk did not finish or got non-2xx answers:\n{out}")
    return int(done.group(1))


def byte_compile(python: str, folder: Path) -> None:
    """Write the bytecode caches of `python`'s motet package (run from `folder`, so this
    checkout does not shadow another interpreter's motet)."""
    script = (
        "import compileall, importlib.util, os, sys\n"
        "package = os.path.dirname(importlib.util.find_spec('motet').origin)\n"
        "sys.exit(0 if compileall.compile_dir(package, quiet=1) else 1)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-c", script], cwd=folder, env=env, check=True)


def example_app(folder: Path) -> Path:
    """A fresh copy of this repository's example app (motet.toml + steps/) in `folder`, so
    its SQLite files start empty."""
    project = folder / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    shutil.copy(ROOT / "motet.toml", project)
    shutil.copytree(ROOT / "steps", project / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def start(variant: str, port: int, folder: Path, python: str) -> subprocess.Popen[bytes]:
    if variant == "bare":
        cmd = [sys.executable, __file__, "--serve-bare", str(port)]
        return subprocess.Popen(cmd)
    project = example_app(folder)
    cmd = [python, "-m", "motet", "--project", str(project), "start"]
    cmd += ["--port", str(port), "--log-level", "error"]
    # Run from the project folder: `-m` puts the working directory first on sys.path, and
    # this checkout's folder would shadow the motet of another interpreter.
    return subprocess.Popen(cmd, cwd=project, stdout=subprocess.DEVNULL)


def measure(
    variant: str, stages: list[int], connections: int, folder: Path, python: str, linger: float
) -> tuple[list[int], list[int]]:
    """VmRSS (KiB) idle, then after each stage's cumulative request count; and the same
    read `linger` seconds later (empty without `linger`)."""
    port = free_port()
    server = start(variant, port, folder, python)
    figures: list[int] = []
    later: list[int] = []

    def read() -> None:
        settle(server.pid)
        figures.append(rss_kib(server.pid))
        if linger:
            time.sleep(linger)
            later.append(rss_kib(server.pid))

    try:
        wait_for_port(port, server)
        read()
        done = 0
        for total in stages:
            done += drive(port, total - done, connections, folder)
            read()
        return figures, later
    finally:
        stop(server)


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it is not over within 30 s."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", default="20000,100000", help="cumulative stages")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--variants", default="bare,motet")
    parser.add_argument("--compare", metavar="PYTHON", help="another interpreter's motet")
    parser.add_argument("--linger", type=float, default=0.0, help="read again after N s")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    stages = [int(n) for n in args.requests.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    variants = args.variants.split(",") + (["compare"] if args.compare else [])
    with tempfile.TemporaryDirectory() as tmp:
        for variant in variants:
            python = args.compare if variant == "compare" else sys.executable
            if variant != "bare":
                byte_compile(python, Path(tmp))
            readings = measure(variant, stages, args.connections, Path(tmp), python, args.linger)
            for kib, label in zip(readings, (variant, f"+{args.linger:g}s"), strict=True):
                if not kib:
                    continue
                figures = [k / 1024 for k in kib]
                after = "  ".join(
                    f"after {n // 1000}k {mib:5.1f} (+{mib - figures[0]:.1f})"
                    for n, mib in zip(stages, figures[1:], strict=True)
                )
                print(f"{label:7} idle {figures[0]:5.1f} MiB  {after}", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
