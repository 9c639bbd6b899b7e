"""motet inside your own trio service: your quart-trio app, your routes, motet's steps.

The service below has its own routes (`/health`, `/stats`) and mounts motet's HTTP steps under
`/api`. A signup request is answered at once (202) and a queue step sends the welcome in the
background; both run in this one process, on one trio event loop, next to whatever else the
service does (here: a task that emits a heartbeat message every minute).

    python examples/embed_service.py          # PORT=8000 by default; PORT=0 picks a free one

    curl -s -X POST localhost:8000/api/signups -H 'content-type: application/json' \\
         -d '{"email": "ada@example.com"}'
    curl -s localhost:8000/api/signups/ada@example.com
    curl -s localhost:8000/health
    curl -s localhost:8000/api/openapi.json      # the steps' OpenAPI document

Ctrl-C (or SIGTERM) stops it gracefully: the server stops accepting and finishes requests
in flight, then the runtime finishes running handlers and closes its backend.
`MOTET_BACKEND` picks the backend (default: a SQLite file in .motet/, so queued welcomes
survive a restart; `memory` keeps nothing).
"""

from __future__ import annotations

import functools
import os
import signal
from typing import Any

import attrs
import trio
from quart_trio import QuartTrio

import motet
from motet import http, queue
from motet.gateway import GatewayOptions, mount, serve
from motet.steps import load_step


@attrs.frozen
class NewSignup:
    email: str


async def create_signup(request: motet.Request, ctx: motet.Context) -> dict[str, Any]:
    email = request.body.email
    await ctx.state.set("signups", email, {"email": email, "welcomed": False})
    await ctx.emit("signup.created", {"email": email})  # durable before we answer 202
    return {"status": 202, "body": {"email": email, "traceId": ctx.trace_id}}


async def get_signup(request: motet.Request, ctx: motet.Context) -> dict[str, Any]:
    signup = await ctx.state.get("signups", request.path_params["email"])
    if signup is None:
        return {"status": 404, "body": {"error": "no such signup"}}
    return {"status": 200, "body": signup}


async def send_welcome(signup: dict[str, Any], ctx: motet.Context) -> None:
    # A real service would call its mail provider here; a failure is retried with backoff.
    await ctx.state.update("signups", signup["email"], {"welcomed": True})
    ctx.logger.info("welcome sent", email=signup["email"])


async def count_heartbeat(beat: dict[str, Any], ctx: motet.Context) -> None:
    await ctx.state.update(
        "service", "heartbeats", [{"type": "increment", "path": "count", "by": 1}]
    )


STEPS = [
    load_step(
        {
            "name": "CreateSignup",
            "triggers": [http("POST", "/signups", body=NewSignup)],
            "enqueues": ["signup.created"],
            "flows": ["signups"],
        },
        create_signup,
    ),
    load_step(
        {"name": "GetSignup", "triggers": [http("GET", "/signups/:email")], "flows": ["signups"]},
        get_signup,
    ),
    load_step(
        {
            "name": "SendWelcome",
            "triggers": [queue("signup.created", max_retries=5)],
            "flows": ["signups"],
        },
        send_welcome,
    ),
    load_step(
        {"name": "CountHeartbeat", "triggers": [queue("service.heartbeat")]}, count_heartbeat
    ),
]


def service_app(runtime: motet.Runtime, options: GatewayOptions) -> QuartTrio:
    """The service's own quart-trio app, with motet's routes mounted under /api."""
    app = QuartTrio("embed_service")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "backend": runtime.backend.name}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        beats = await runtime.backend.state_get("service", "heartbeats")
        return {"heartbeats": (beats or {}).get("count", 0)}

    assert runtime.dispatcher is not None  # set once the runtime runs
    mount(
        app,
        runtime.steps,
        runtime.dispatcher,
        converter=runtime.converter,
        options=options,
        url_prefix="/api",
    )
    return app


async def heartbeat(runtime: motet.Runtime, stop: trio.Event) -> None:
    """Something else the service does on the same event loop: emit into motet's queues."""
    while not stop.is_set():
        await runtime.emit("service.heartbeat", {"source": "embed_service"})
        with trio.move_on_after(60):
            await stop.wait()


async def main(port: int, backend: str) -> None:
    options = GatewayOptions(host="127.0.0.1", port=port)
    stop = trio.Event()
    # serve=False: the service serves HTTP itself (motet's routes are mounted in its app).
    # `open_runtime(STEPS, serve=True)` would instead serve the steps on a port of their own.
    async with motet.open_runtime(STEPS, backend=backend) as runtime:
        app = service_app(runtime, options)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, stop)
            # After `stop`, serve() stops accepting and returns once requests in flight
            # are answered (GatewayOptions.graceful_timeout at most).
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            print(f"embed_service listening on {urls[0]}", flush=True)
            nursery.start_soon(heartbeat, runtime, stop)
        # Leaving `open_runtime` stops the runtime gracefully: running handlers finish.
    print("embed_service stopped", flush=True)


async def stop_on_signal(stop: trio.Event) -> None:
    """The first SIGINT / SIGTERM stops gracefully; once this returns, the default handlers
    are back, so a second Ctrl-C interrupts at once."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            stop.set()
            return


if __name__ == "__main__":
    trio.run(main, int(os.environ.get("PORT", "8000")), os.environ.get("MOTET_BACKEND", "sqlite"))
