"""`motet start`: run the project in this process until a signal stops it.

The first SIGINT / SIGTERM stops gracefully: the gateway lets requests in flight finish
(`graceful_timeout`), answers every request it has read (with `Connection: close`), and
answers connections that arrive meanwhile with 503 + `Retry-After` before any handler runs;
step actors lease nothing more, running handlers get `RuntimeOptions.shutdown_timeout`, then
actors and the backend stop in reverse order of start. A second signal cancels everything at
once; the process then exits 128 + signal number, as a shell reports a process killed by
that signal.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import attrs
import click
import trio

from ._app import Project

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def with_config_file(project: Project, flags: dict[str, Any]) -> Project:
    """`-c FILE` is the project's one file for every setting (steps, backend, queues)."""
    config_file = flags.get("config_file")
    return attrs.evolve(project, config_file=Path(config_file)) if config_file else project


def configured(project: Project, flags: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The project's config with the command-line flags applied, its steps, and the
    gateway's options. Raises the user's errors before anything runs."""
    from ..gateway._options import gateway_options

    project = with_config_file(project, flags)
    config = project.config(
        host=flags.get("host"),
        port=flags.get("port"),
        backend=flags.get("backend"),
        log_format=flags.get("log_format"),
        log_level=flags.get("log_level"),
        steps=flags.get("steps_dir"),
    )
    steps = project.steps(config.steps)
    gateway = gateway_options(config)
    return config, steps, gateway


def build_runtime(project: Project, config: Any, steps: Any, gateway: Any, **options: Any) -> Any:
    """The runtime `motet start` runs: the steps over the configured backend, with telemetry
    and the gateway as its parts (`RuntimeOptions` from `options`). Caps malloc arenas
    first and drops attrs' generated source text (`_malloc`)."""
    from .._malloc import forget_generated_sources, limit_malloc_arenas
    from .._runtime import Runtime, RuntimeOptions
    from ..console._part import serving

    forget_generated_sources()  # before the runtime allocates what it keeps
    limit_malloc_arenas()  # before the runtime's threads exist
    return Runtime(
        steps,
        backend=project.backend(config.backend),
        project=config,
        parts=serving(gateway),
        options=RuntimeOptions(**options),
    )


def serve_project(project: Project, flags: dict[str, Any], *, parent_fd: int | None = None) -> int:
    """Run until stopped; returns the exit status (0 after a graceful stop). With
    `parent_fd`, also stop gracefully when that pipe reaches EOF (its writer, the
    supervising process, is gone)."""
    config, steps, gateway = configured(project, flags)
    runtime = build_runtime(project, config, steps, gateway)
    if parent_fd is not None:
        from ._instances import serve_child

        return trio.run(serve_child, runtime, parent_fd)
    return trio.run(serve_until_signalled, runtime)


async def serve_until_signalled(runtime: Any) -> int:
    """Run `runtime` until SIGINT/SIGTERM. Returns 0 after a graceful stop, 128 + signum
    when a second signal cut the stop short. Errors of the runtime propagate. Once the
    runtime has started, start-up's objects are moved out of the garbage collector's way,
    young collections run less often (`_gc`), and the allocator's free pages go back to the
    system (`_malloc`)."""
    from .._gc import tune_for_serving
    from .._malloc import release_free_memory

    forced: list[int] = []
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                stopping = False
                async for signum in signals:
                    if stopping:
                        click.echo("motet: second signal, stopping now", err=True)
                        forced.append(signum)
                        nursery.cancel_scope.cancel()
                        return
                    stopping = True
                    click.echo(
                        "motet: stopping: finishing requests and handlers in flight "
                        "(signal again to stop at once)",
                        err=True,
                    )
                    runtime.stop()

            async def run(*, task_status: trio.TaskStatus[Any]) -> None:
                await runtime.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await nursery.start(run)
            tune_for_serving()  # collections walk only what serving makes, and run less
            release_free_memory()  # what start-up freed, now it is done
    return 128 + forced[0] if forced else 0


def run_instances(project: Project, instances: int, flags: dict[str, Any]) -> int:
    """N worker processes over one backend, all serving one port (see `_instances`)."""
    from ._instances import run_instances as run

    # Loading here reports the user's errors once, before any process starts.
    config, _steps, gateway = configured(project, flags)
    return run(project, instances, gateway, config, flags)
