"""`motet dev`: `motet start` in a child process, restarted when the project's code changes.

The app runs in a child process rather than being re-imported in this one: a step file's
helper modules (and anything they import) stay cached in `sys.modules`, so an in-process
reload would keep running old code. A fresh process loads everything anew. State survives
a restart through the backend (the default sqlite file); the memory backend starts empty.

    parent (this module)                       child: python -m motet.cli start ...
    ├── watcher   .py / .toml changes  ──>     SIGTERM: graceful stop, then a new child
    └── signals   SIGINT / SIGTERM     ──>     forwarded; a second one stops the child at once

The child runs in its own session, so a Ctrl-C in the terminal reaches only the parent,
which forwards it once (the child would read a second copy as "stop at once"). Its stdin is
a pipe from the parent: if the parent dies without a word (SIGKILL), the child reads EOF
and stops gracefully rather than serving on as an orphan.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import trio

from ._app import Project
from ._start import STOP_SIGNALS

RESTART_GRACE = 10.0  # s a changed app gets to stop gracefully before it is told again
KILL_GRACE = 5.0  # s after the second signal before SIGKILL

_FLAG_NAMES = {
    "port": "--port",
    "host": "--host",
    "backend": "--backend",
    "steps_dir": "--steps",
    "log_format": "--log-format",
    "log_level": "--log-level",
}


def child_command(project: Project, flags: dict[str, Any]) -> list[str]:
    """The `motet start` command line the child runs."""
    command = [sys.executable, "-m", "motet.cli", "--project", str(project.root)]
    if project.debug:
        command.append("--debug")
    command += ["start", "--parent-fd", "0"]  # stdin: a pipe from us; EOF when we are gone
    for name, option in _FLAG_NAMES.items():
        value = flags.get(name)
        if value is not None:
            command += [option, str(value)]
    return command


def develop(project: Project, flags: dict[str, Any]) -> int:
    check_port(project, flags)
    return trio.run(Reloader(project.root, child_command(project, flags)).run)


def check_port(project: Project, flags: dict[str, Any]) -> None:
    """Fail at once, as `motet start` would, when the address is taken: the child would exit
    on every start and no saved change could fix it. Raises GatewayError naming the address.
    (Someone taking the port between this check and the child's bind meets the child's own
    error line instead.)"""
    from ..gateway._options import gateway_options
    from ..gateway._serve import listen_socket

    config = project.config(host=flags.get("host"), port=flags.get("port"))
    options = gateway_options(config)
    if options.port == 0:
        return
    listen_socket(options, backlog=1).close()


def describe_changes(root: Path, paths: set[str]) -> str:
    """`steps/a_step.py`, or `steps/a_step.py and 2 more`, relative to the project."""
    shown = []
    for path in sorted(paths):
        try:
            shown.append(str(Path(path).relative_to(root)))
        except ValueError:
            shown.append(path)
    if not shown:
        return "a file"
    return shown[0] + (f" and {len(shown) - 1} more" if len(shown) > 1 else "")


class Reloader:
    """Runs `command` until a signal, restarting it when a file under `root` changes."""

    def __init__(self, root: Path, command: list[str]) -> None:
        self.root = root
        self.command = command
        self.changed = trio.Event()
        self.changed_paths: set[str] = set()
        self.stopping = trio.Event()
        self.forced = False
        self.process: trio.Process | None = None
        # Read by watchfiles' thread between polls: the watcher cannot be cancelled while
        # that thread waits, and without this it would wait out its 5 s timeout.
        self._unwatch = trio.Event()

    async def run(self) -> int:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._watch)
                nursery.start_soon(self._on_signals, signals)
                status = await self._loop()
                self._unwatch.set()
                nursery.cancel_scope.cancel()
        return status

    async def _loop(self) -> int:
        while True:
            self.changed = trio.Event()
            self.changed_paths = set()
            status = await self._run_child()
            if self.stopping.is_set():
                return 0 if not self.forced else 128 + signal.SIGTERM
            if self.changed.is_set():
                what = describe_changes(self.root, self.changed_paths)
                click.echo(f"motet: {what} changed, restarting", err=True)
                continue
            click.echo(
                f"motet: the app exited with status {status}; fix it and save, "
                "motet restarts it on the next change",
                err=True,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_when, self.changed, nursery)
                nursery.start_soon(_set_when, self.stopping, nursery)
            if self.stopping.is_set():
                return 0

    async def _run_child(self) -> int:
        process = await trio.lowlevel.open_process(
            self.command, start_new_session=True, stdin=subprocess.PIPE
        )
        self.process = process
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._restart_on_change, process)

                async def wait() -> None:
                    await process.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(wait)
        finally:
            self.process = None
            with trio.CancelScope(shield=True):
                if process.returncode is None:  # we are being cancelled: leave no orphan
                    process.kill()
                    await process.wait()
                if process.stdin is not None:
                    await process.stdin.aclose()
        assert process.returncode is not None
        return process.returncode

    async def _restart_on_change(self, process: trio.Process) -> None:
        await self.changed.wait()
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(RESTART_GRACE):
            await process.wait()
            return
        process.send_signal(signal.SIGTERM)  # the second signal: stop at once
        with trio.move_on_after(KILL_GRACE):
            await process.wait()
            return
        process.kill()

    async def _on_signals(self, signals: Any) -> None:
        async for _signum in signals:
            if self.stopping.is_set():
                self.forced = True
                click.echo("motet: second signal, stopping now", err=True)
            else:
                self.stopping.set()
            process = self.process
            if process is not None and process.returncode is None:
                # The child prints its own "stopping" line.
                process.send_signal(signal.SIGTERM)

    async def _watch(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        import watchfiles

        class SourceFilter(watchfiles.DefaultFilter):
            ignore_dirs = (*watchfiles.DefaultFilter.ignore_dirs, ".motet")

            def __call__(self, change: watchfiles.Change, path: str) -> bool:
                return path.endswith((".py", ".toml")) and super().__call__(change, path)

        task_status.started()
        watching = watchfiles.awatch(
            self.root, watch_filter=SourceFilter(), debounce=300, stop_event=self._unwatch
        )
        async with contextlib.aclosing(watching) as changes:
            async for batch in changes:
                self.changed_paths.update(path for _change, path in batch)
                self.changed.set()


async def _set_when(event: trio.Event, nursery: trio.Nursery) -> None:
    await event.wait()
    nursery.cancel_scope.cancel()
