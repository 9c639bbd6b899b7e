"""Running the project from the command line: signals, reload, several instances."""

from __future__ import annotations

import signal
from typing import Any

import attrs
import click
import trio

from ._app import Project

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _configured(project: Project, flags: dict[str, Any]) -> tuple[Any, Any, Any]:
    from ..gateway import GatewayOptions

    config = project.config(
        host=flags.get("host"), port=flags.get("port"), backend=flags.get("backend"),
        log_format=flags.get("log_format"), log_level=flags.get("log_level"),
        steps=flags.get("steps_dir"))
    steps = project.steps(config.steps)
    gateway = GatewayOptions(host=config.host, port=config.port)
    return config, steps, gateway


def _runtime(project: Project, config: Any, steps: Any, gateway: Any) -> Any:
    from .._runtime import Runtime
    from .._serve import gateway_for

    return Runtime(steps, backend=project.backend(config.backend), project=config,
                   gateway=gateway_for(gateway))


def serve_project(project: Project, flags: dict[str, Any]) -> None:
    config, steps, gateway = _configured(project, flags)
    runtime = _runtime(project, config, steps, gateway)
    trio.run(serve_until_signalled, runtime)


async def serve_until_signalled(runtime: Any) -> None:
    """Run until SIGINT/SIGTERM: the first stops gracefully (in-flight requests and running
    handlers finish within their deadlines), a second stops at once."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _signum in signals:
                    if runtime._stop.is_set():
                        click.echo("motet: second signal, stopping now", err=True)
                        nursery.cancel_scope.cancel()
                        return
                    click.echo("motet: stopping (signal again to force)", err=True)
                    runtime.stop()

            async def run() -> None:
                await runtime.run()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(run)


def serve_with_reload(project: Project, flags: dict[str, Any]) -> None:
    trio.run(_reload_loop, project, flags)


async def _reload_loop(project: Project, flags: dict[str, Any]) -> None:
    from .._errors import MotetError

    while True:
        try:
            config, steps, gateway = _configured(project, flags)
            runtime = _runtime(project, config, steps, gateway)
        except MotetError as exc:
            click.echo(f"motet: error: {exc}\nmotet: waiting for a change...", err=True)
            await _next_change(project)
            continue
        changed = await _run_until_change(project, runtime)
        if not changed:
            return


async def _run_until_change(project: Project, runtime: Any) -> bool:
    """Run until a file changes (True) or a signal stops the runtime (False)."""
    changed = False
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            nonlocal changed
            await _next_change(project)
            changed = True
            click.echo("motet: change detected, reloading", err=True)
            runtime.stop()

        nursery.start_soon(watch)
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            nursery.start_soon(_stop_on_signal, signals, runtime, nursery)
            await runtime.run()
        nursery.cancel_scope.cancel()
    return changed


async def _stop_on_signal(signals: Any, runtime: Any, nursery: trio.Nursery) -> None:
    async for _signum in signals:
        if runtime._stop.is_set():
            nursery.cancel_scope.cancel()
            return
        runtime.stop()


async def _next_change(project: Project) -> None:
    import watchfiles

    def relevant(_change: Any, path: str) -> bool:
        return path.endswith((".py", ".toml")) and "__pycache__" not in path

    async for _changes in watchfiles.awatch(project.root, watch_filter=relevant):
        return


def run_instances(project: Project, instances: int, flags: dict[str, Any]) -> None:
    """N worker processes over one backend, all serving one port (SO_REUSEPORT)."""
    from ._instances import run_instances as run

    config, steps, gateway = _configured(project, flags)
    del steps  # each instance loads them itself; loading here reports errors once, early
    run(project, instances, attrs.evolve(gateway), config, flags)
