"""POST -> 200 requests/s through the motet gateway vs a bare ASGI app, same hypercorn trio
worker, same run; plus idle RSS of each server process.

    .venv/bin/python bench/bench_gateway.py [--seconds 5] [--rounds 3] [--connections 50]

Each variant is a server in its own process, pinned to CPU 0; the load generator (`wrk`,
`apt-get install -y wrk`) is pinned to CPU 1. Rounds are interleaved (every variant once per
round) and the median is reported, because this VM's speed drifts between runs.

Variants (every handler parses the JSON body and awaits a trivial emit-like checkpoint):
  bare            a bare ASGI callable on hypercorn's trio worker (the baseline)
  motet           build_app() + serve(): routing, body validation against an attrs schema,
                  trace id, structured response (motet's routes are answered by its lean
                  ASGI layer, motet/gateway/_asgi.py)
  quart-trio      a plain QuartTrio route, stock connection class: has the keep-alive defect
  quart-safe      the same with motet's fix, KeepAliveSafeHTTPConnection (_connection.py)
  quart-patched   the same with the known workaround instead: hypercorn's
                  TCPServer.protocol_send shielded process-wide

Measured 2026-11-23 (2 vCPUs shared with other busy jobs: absolute rates are low and swing
by 2x between rounds; compare the ratios), median of 7 rounds of 3 s:
  bare 394 req/s, 779 us CPU/req, 1869 calls/req, idle RSS 31.2 MiB
  motet 387 req/s (0.98), CPU/req ratio 0.92, calls ratio 0.87, idle RSS 48.8 MiB
  quart-trio 0.77 / 0.67 / 0.74; quart-safe 0.67 / 0.57 / 0.67; quart-patched
  0.68 / 0.59 / 0.65 (rate / cpu / calls): the keep-alive fix costs quart-trio about 250
  calls per request, which is hypercorn's own idle-timer re-arming that the defect skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("bare", "motet", "quart-trio", "quart-safe", "quart-patched")
BODY = '{"name": "Rex", "age": 3, "tags": ["good"]}'
LUA = f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


# --- the servers (run in a child process: `bench_gateway.py --serve VARIANT`) ------------


def _bare_app() -> Any:
    import trio

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
        data = json.loads(body)
        await trio.lowlevel.checkpoint()  # the emit
        out = json.dumps({"id": "p1", "name": data["name"], "age": data["age"]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(out)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})

    return app


def _motet_app() -> Any:
    import attrs
    import trio

    from motet.gateway import build_app
    from motet.steps import HttpTrigger, Step, make_converter

    @attrs.frozen
    class NewPet:
        name: str
        age: int
        tags: list[str] = attrs.Factory(list)

    @attrs.frozen
    class Pet:
        id: str
        name: str
        age: int

    async def handler(request: Any, ctx: Any) -> Any:
        await trio.lowlevel.checkpoint()  # the emit
        return Pet("p1", request.body.name, request.body.age)

    class Invoker:  # the runtime's side, reduced to calling the handler
        async def invoke_http(self, step: Any, trigger: Any, request: Any) -> Any:
            return await step.handler(request, None)

        def log_error(self, message: str, **fields: Any) -> None:
            print(message, fields, file=sys.stderr)

    step = Step(
        name="create-pet", handler=handler, triggers=(HttpTrigger("POST", "/pets", body=NewPet),)
    )
    return build_app([step], Invoker(), converter=make_converter())


def _quart_app(fix: str | None) -> Any:
    import trio
    from quart import request
    from quart_trio import QuartTrio

    if fix == "patched":  # stack.md §2.3's workaround, process-wide
        import hypercorn.trio.tcp_server as tcp

        original = tcp.TCPServer.protocol_send

        async def shielded(self: Any, event: Any) -> None:
            with trio.CancelScope(shield=True):
                await original(self, event)

        tcp.TCPServer.protocol_send = shielded  # type: ignore[method-assign]

    app = QuartTrio("bench")
    if fix == "safe":
        from motet.gateway import KeepAliveSafeHTTPConnection

        app.asgi_http_class = KeepAliveSafeHTTPConnection

    @app.post("/pets")
    async def create() -> Any:
        data = await request.get_json()
        await trio.lowlevel.checkpoint()
        return {"id": "p1", "name": data["name"], "age": data["age"]}

    return app


def _count_calls_on_signals() -> None:
    """SIGUSR1 starts counting Python function calls, SIGUSR2 prints the count: a measure
    of work per request that does not depend on how busy the machine is."""
    import cProfile
    import pstats
    import signal

    profile = cProfile.Profile()

    def start(*_: Any) -> None:
        nonlocal profile
        profile = cProfile.Profile()
        profile.enable()

    def stop(*_: Any) -> None:
        profile.disable()
        stats = pstats.Stats(profile, stream=sys.stderr)
        if os.environ.get("BENCH_DUMP"):
            stats.sort_stats("ncalls").print_stats(25)
        # Requests as the server counted them: hypercorn's HTTP/1.1 protocol makes one
        # stream per request (motet's protocol subclass calls it too).
        h11_module = os.path.join("hypercorn", "protocol", "h11.py")
        requests = sum(
            counts[1]
            for (path, _, name), counts in stats.stats.items()  # type: ignore[attr-defined]
            if name == "_create_stream" and path.endswith(h11_module)
        )
        print(f"calls {stats.total_calls} requests {requests}", flush=True)  # type: ignore[attr-defined]

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def serve_variant(variant: str) -> None:
    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    apps = {
        "bare": _bare_app,
        "motet": _motet_app,
        "quart-trio": lambda: _quart_app(None),
        "quart-safe": lambda: _quart_app("safe"),
        "quart-patched": lambda: _quart_app("patched"),
    }
    app = apps[variant]()
    _count_calls_on_signals()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            if variant == "motet":  # motet's serve() (it would install the fix on the others)
                from motet.gateway import GatewayOptions, serve

                urls = await nursery.start(serve, app, GatewayOptions(port=0, error_log=None))
            else:
                config = Config()
                config.bind = ["127.0.0.1:0"]
                config.errorlog = None
                config.accesslog = None
                urls = await nursery.start(hypercorn_serve, app, config)
            print(urls[0], flush=True)

    trio.run(main)


# --- the driver ------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else -1


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time of a process (all its threads), or of one of its threads."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, server: subprocess.Popen[Any]) -> None:
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


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> tuple[float, int]:
    duration = f"-d{max(1, round(seconds))}s"
    cmd = [*pin(1), "wrk", "-t1", f"-c{connections}", duration, "-s", str(script), url + "/pets"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if rate is None or count is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(rate.group(1)), int(count.group(1))


@attrs.frozen
class Sample:
    rate: float  # requests/s as wrk saw them
    cpu_us: float  # server CPU time (user + system) per request, microseconds
    idle_rss_kib: int
    calls: float  # Python function calls in the server per request
    # CPU of the server's main thread (the trio loop) per request; the rest of cpu_us is
    # its worker threads' (SQLite's writer, the telemetry writer)
    main_us: float = float("nan")


def count_calls(
    server: subprocess.Popen[str], url: str, script: Path, seconds: float, connections: int
) -> float:
    """Python calls per request in the server, under cProfile for one wrk run: the calls
    over the requests the server itself counted (wrk's own count can miss or add requests
    cut at the end of its run). The run's connection set-up is included: a few calls per
    request at the rates here."""
    assert server.stdout is not None
    server.send_signal(signal.SIGUSR1)
    time.sleep(0.1)
    run_wrk(url, script, seconds, connections)
    server.send_signal(signal.SIGUSR2)
    line = server.stdout.readline().split()
    if len(line) != 4 or line[0] != "calls":
        raise RuntimeError(f"the server did not report its calls: {line}")
    return int(line[1]) / max(1, int(line[3]))


def measure(variant: str, script: Path, seconds: float, connections: int) -> Sample:
    server = subprocess.Popen(
        [*pin(0), sys.executable, __file__, "--serve", variant], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"{variant} server did not start")
        time.sleep(0.3)
        idle = rss_kib(server.pid)
        run_wrk(url, script, 1, connections)  # warm-up
        before, main_before = cpu_seconds(server.pid), cpu_seconds(server.pid, server.pid)
        rate, count = run_wrk(url, script, seconds, connections)
        cpu = cpu_seconds(server.pid) - before
        main = cpu_seconds(server.pid, server.pid) - main_before
        calls = count_calls(server, url, script, 3, connections)
        return Sample(rate, cpu / count * 1e6, idle, calls, main / count * 1e6)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(
    *,
    variants_all: tuple[str, ...] = VARIANTS,
    serve: Any = None,
    measure_one: Any = None,
    description: str | None = None,
) -> dict[str, tuple[float, float, float, float, float]] | None:
    """Run the rounds, print the medians and return them per variant (rate, CPU us per
    request, calls per request, idle RSS KiB, main thread's CPU us per request); None when
    serving. bench_gateway_runtime.py calls this with its own variants, server and
    measurement."""
    serve = serve or serve_variant
    measure_one = measure_one or measure
    about = (description or __doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=about)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--variants", default=",".join(variants_all))
    parser.add_argument("--serve", choices=variants_all, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return None
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    variants = args.variants.split(",")
    samples: dict[str, list[Sample]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        for round_ in range(args.rounds):
            for variant in variants:
                sample = measure_one(variant, script, args.seconds, args.connections)
                samples[variant].append(sample)
                print(
                    f"round {round_ + 1} {variant:15} {sample.rate:8.0f} req/s "
                    f"{sample.cpu_us:7.0f} us CPU/req ({sample.main_us:4.0f} main thread) "
                    f"{sample.calls:6.0f} calls/req  "
                    f"idle RSS {sample.idle_rss_kib / 1024:.1f} MiB",
                    flush=True,
                )
    print(
        f"\nmedian of {args.rounds} rounds, {args.seconds:g} s each, "
        f"{args.connections} connections, server on CPU 0, wrk on CPU 1."
    )
    print("Ratios to bare: 'rate' = req/s; 'cpu' = CPU time per request, inverted (the rate")
    print("ratio a CPU-bound server shows); 'calls' = Python calls per request, inverted")
    print("(counted under cProfile in separate runs; does not depend on machine load).")
    med = {
        v: (
            statistics.median(s.rate for s in samples[v]),
            statistics.median(s.cpu_us for s in samples[v]),
            statistics.median(s.calls for s in samples[v]),
            statistics.median(s.idle_rss_kib for s in samples[v]),
            statistics.median(s.main_us for s in samples[v]),
        )
        for v in variants
    }
    base = med.get("bare")
    for variant, (rate, cpu_us, calls, rss, main_us) in med.items():
        ratios = (
            f"rate {rate / base[0]:4.2f}  cpu {base[1] / cpu_us:4.2f}  calls {base[2] / calls:4.2f}"
            if base
            else ""
        )
        print(
            f"  {variant:15} {rate:7.0f} req/s {cpu_us:6.0f} us CPU/req ({main_us:4.0f} main "
            f"thread) {calls:5.0f} calls/req"
            f"  {ratios}  idle RSS {rss / 1024:.1f} MiB"
        )
    return med


if __name__ == "__main__":
    main()
