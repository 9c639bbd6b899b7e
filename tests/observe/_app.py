"""A runtime with telemetry and the operator in front of its gateway, driven in-process
through httpx's ASGI transport (so `client` picks the peer address the operator sees)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import attrs
import httpx
import trio
import trio.testing

from motet import Observer, RuntimeOptions, WallClock
from motet._runtime import Runtime, running
from motet.backends import MemoryBackend
from motet.backends._protocol import Backend
from motet.console._auth import OperatorAccess
from motet.console._operator import install_operator
from motet.gateway import GatewayOptions, build_app
from motet.observe import Telemetry, TelemetryOptions
from motet.project import ProjectConfig
from motet.steps import load_step
from motet.steps._model import Step

ANCHOR = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
LOOPBACK = ("127.0.0.1", 50000)


@attrs.frozen
class Observed:
    runtime: Runtime
    http: httpx.AsyncClient
    telemetry: Telemetry

    async def settle(self) -> None:
        """Return once nothing is queued, delayed, leased or running, and telemetry is
        written (under autojump, retry delays pass in virtual time)."""
        runtime = self.runtime
        assert runtime.dispatcher is not None
        while True:
            await trio.testing.wait_all_tasks_blocked()
            depth = await runtime.backend.depth()
            busy = (
                runtime.dispatcher.in_flight
                or any(a.pending_acks() for a in runtime.actors)
                or any(d.pending for d in depth.values())
            )
            if not busy:
                break
            await trio.sleep(0.05)
        await self.telemetry.flush()


@asynccontextmanager
async def open_observed(
    steps: Sequence[Step],
    *,
    token: str | None = None,
    client: tuple[str, int] = LOOPBACK,
    telemetry: TelemetryOptions | None = None,
    backend: Backend | None = None,
    project: ProjectConfig | None = None,
    stdlib_logging: bool = False,
    observers: Sequence[Observer] = (),
) -> AsyncIterator[Observed]:
    options = RuntimeOptions(
        retry_jitter=0.0,
        log_sink=False,
        shutdown_timeout=0.0,
        stdlib_logging=stdlib_logging,
    )
    project = project or ProjectConfig(token=token)
    recorder = Telemetry(telemetry or TelemetryOptions(store="memory"))
    runtime = Runtime(
        steps,
        backend=backend or MemoryBackend(),
        project=project,
        clock=WallClock(ANCHOR),
        options=options,
        parts=[recorder],
        observers=observers,
    )
    async with running(runtime):
        assert runtime.dispatcher is not None
        gateway = GatewayOptions()
        app = build_app(
            runtime.steps, runtime.dispatcher, converter=runtime.converter, options=gateway
        )
        install_operator(
            app,
            runtime.view,
            gateway,
            OperatorAccess(project.token),
            telemetry=recorder,
            on_http=runtime.observer.hook("on_http"),
        )
        transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield Observed(runtime, http, recorder)


def http_step(name: str, method: str, path: str, handler: Any, **extra: Any) -> Step:
    return load_step(
        {"name": name, "triggers": [{"type": "http", "method": method, "path": path}], **extra},
        handler,
    )


def queue_step(
    name: str, topic: str, handler: Any, *, options: dict[str, Any] | None = None, **extra: Any
) -> Step:
    return load_step(
        {"name": name, "triggers": [{"type": "queue", "topic": topic, **(options or {})}], **extra},
        handler,
    )
