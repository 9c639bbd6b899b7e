"""`open_runtime`: a runtime inside the caller's own trio program, assembled as `motet
start` assembles it (settings, steps, backend, and, when it serves, telemetry and the gateway
with the console in front)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ._clock import Clock
from ._observer import Observer
from ._runtime import Part, Runtime, RuntimeOptions, running
from .backends._protocol import Backend
from .project import ProjectConfig
from .steps._model import Step

if TYPE_CHECKING:
    from .gateway import GatewayOptions
    from .observe import TelemetryOptions


@asynccontextmanager
async def open_runtime(
    steps: Sequence[Step] | str | Path | None = None,
    *,
    backend: Backend | str | None = None,
    project: ProjectConfig | None = None,
    clock: Clock | None = None,
    options: RuntimeOptions | None = None,
    serve: GatewayOptions | bool = False,
    telemetry: TelemetryOptions | bool = True,
    observers: Sequence[Observer] = (),
    root: str | Path = ".",
) -> AsyncIterator[Runtime]:
    """Run motet inside your own trio program:

        async with motet.open_runtime("steps", backend="sqlite", serve=True) as runtime:
            ...   # the runtime runs until the block exits (a graceful stop)

    The settings are assembled as `motet start` assembles them (`assemble_config`): `root`'s
    motet.toml or `[tool.motet]` < `MOTET_*` variables < these arguments; without any of
    them the backend is "memory" (an embedded runtime writes no file unasked). `project`
    instead gives every setting at once. `steps` is a folder under `root` (default: the
    config's `steps`) or Step objects. `serve=True` also serves the HTTP steps on the
    config's host and port with its limits (a GatewayOptions gives them all); the bound URLs
    are in `runtime.gateway_urls`. A served runtime records logs, traces and metrics for the
    console and /metrics (`telemetry`: True for the defaults, a TelemetryOptions, or False).
    `observers` watch it (`motet.Observer`).
    """
    from .backends import backend_from_url
    from .project import assemble_config
    from .steps import load_steps

    root_path = Path(root)
    if project is None:
        named = backend if isinstance(backend, str) else None
        project = assemble_config(root_path, defaults={"backend": "memory"}, backend=named)
    folder = None
    if steps is None or isinstance(steps, str | Path):
        folder = root_path / (project.steps if steps is None else steps)
        steps = load_steps(folder)
    if backend is None or isinstance(backend, str):
        backend = backend_from_url(backend or project.backend, root=root_path)
    parts: list[Part] = []
    if serve:
        from .console._part import serving
        from .gateway._options import GatewayOptions, gateway_options

        gateway = serve if isinstance(serve, GatewayOptions) else gateway_options(project)
        parts = serving(gateway, telemetry)
    runtime = Runtime(
        steps,
        backend=backend,
        project=project,
        clock=clock,
        options=options,
        parts=parts,
        observers=observers,
        steps_folder=folder,
    )
    async with running(runtime):
        yield runtime
