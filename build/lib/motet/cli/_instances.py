"""`motet start --instances N`: N worker processes over one backend, all serving one port.

    parent (this module)                          children: python -m motet.cli._instances
    ├── the listening socket host:port  ─ fd ──>  each serves it (GatewayOptions.listen_fd)
    ├── an OTP Supervisor, one child per          MOTET_INSTANCE=i in the environment;
    │   instance: start, wait, restart with       log lines carry the instance
    │   backoff, give up when they keep dying
    │   (RestartPolicy)
    ├── a pipe per child                  ─────>  EOF: the parent is gone, stop gracefully
    └── SIGINT / SIGTERM                  ─────>  SIGTERM: graceful drain; a second signal
                                                  is forwarded again: stop at once

The backend makes the instances safe together: a message is leased to one instance at a time
and a cron tick is published by the one instance that claims it (`claim_tick`).

The port is one socket created here and inherited by every child, rather than one
SO_REUSEPORT socket per child, because:
- there is one accept queue: a child that is killed or restarted leaves the connections
  waiting in the backlog to its siblings (with SO_REUSEPORT each socket has its own queue,
  and the connections queued on a dying child's socket are reset). During a graceful stop
  every child drains, and a draining child still accepts, answering 503 + `Retry-After`,
  so nothing waits in the backlog for the drain (this process keeps the socket open until
  the last child has exited);
- the port stays bound while children restart, and no other process can join it (any process
  of the same user can bind an SO_REUSEPORT port and take a share of the connections);
- port 0 works (the port is picked once, here), and it behaves the same on every POSIX
  system (SO_REUSEPORT balances connections only on Linux).
The cost: every idle child wakes on a new connection and one wins the accept (negligible for
a few processes). The children run in their own session, so a Ctrl-C in the terminal reaches
only this process, which forwards it once (a second copy would mean "stop at once").
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, Protocol

import attrs
import click
import trio

from .._backoff import Backoff
from .._errors import SupervisorGaveUp
from .._validators import count, seconds
from ..supervision import (
    ChildSpec,
    ChildTaskStatus,
    Supervisor,
    SupervisorEvent,
    SupervisorOptions,
)
from ._app import EXIT_USER_ERROR, Project, UserError, exit_code, report
from ._start import STOP_SIGNALS, build_runtime, configured, serve_until_signalled

INSTANCE_ENV = "MOTET_INSTANCE"  # the child's instance number, 1..N
SPEC_ENV = "MOTET_INSTANCE_SPEC"  # the child's spec (JSON): project, flags, inherited fds
RESTART_BACKOFF = Backoff(initial=0.5, cap=8.0)  # before an instance's process starts again


@attrs.frozen
class RestartPolicy:
    """When a child that exits unexpectedly is started again.

    The n-th consecutive unexpected exit of an instance waits `backoff.delay(n)` s (0.5 s
    doubling up to 8 s); an instance that ran `healthy_after` s starts over at the first
    delay. More than `intensity` unexpected exits (all instances together) within `period` s
    stop every instance and the parent exits 1: these two are the OTP supervisor's restart
    intensity. A child exiting with status 2 (the user's steps or config are wrong) is never
    restarted. `kill_grace` is how long children get after the second stop signal before
    SIGKILL.
    """

    intensity: int = attrs.field(default=5, validator=count(minimum=0))
    period: float = attrs.field(default=60.0, validator=seconds())
    backoff: Backoff = RESTART_BACKOFF
    healthy_after: float = attrs.field(default=30.0, validator=seconds(allow_zero=True))
    kill_grace: float = attrs.field(default=10.0, validator=seconds(allow_zero=True))


class ChildProcess(Protocol):
    """What the supervisor needs of a child (trio.Process has it)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


Spawn = Callable[[int], Awaitable[ChildProcess]]


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


class InstanceExited(Exception):
    """An instance's process exited when nobody asked it to; the supervisor restarts it."""


@attrs.define
class _Instance:
    """What outlives one process of an instance: its consecutive unexpected exits, and the
    delay before its next process with the line that announces it."""

    number: int
    failures: int = 0
    delay: float = 0.0
    restarting: str | None = None


class InstanceSupervisor:
    """Keeps `count` children running until `stop()`; `run()` returns the exit status.

    Each instance is a transient child of motet's OTP `Supervisor` whose start runs one
    process and returns when it exits: it raises `InstanceExited` for an unexpected exit,
    so the supervisor restarts it within its intensity, and returns normally when it was
    asked to stop. The backoff runs inside the child (after it reported ready), so one
    instance's wait never delays another's restart.
    """

    def __init__(
        self,
        count: int,
        spawn: Spawn,
        policy: RestartPolicy | None = None,
        *,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"instances must be at least 1, got {count!r}")
        self.count = count
        self.policy = policy or RestartPolicy()
        self.live: dict[int, ChildProcess] = {}
        self.stopping = trio.Event()
        self.forced_by: int | None = None  # the signal that cut the stop short
        self.failure: str | None = None  # why the supervisor gave up
        self.stop_errors: list[str] = []
        self._spawn = spawn
        self._echo = echo or (lambda line: click.echo(line, err=True))
        self._instances = {i: _Instance(i) for i in range(1, count + 1)}
        self._scope = trio.CancelScope()  # around the OTP supervisor: stop() cancels it
        self._nursery: trio.Nursery | None = None

    async def run(self) -> int:
        supervisor = Supervisor(
            [
                ChildSpec(
                    f"instance {i}",
                    functools.partial(self._serve, instance),
                    restart="transient",
                    shutdown=math.inf,  # a draining instance has its own deadline
                )
                for i, instance in self._instances.items()
            ],
            SupervisorOptions(
                intensity=self.policy.intensity,
                period=self.policy.period,
                name="instances",
                on_event=self._on_event,
            ),
        )
        async with trio.open_nursery() as timers:  # the kill timer of `force`
            self._nursery = timers
            with self._scope:
                try:
                    await supervisor.run()
                except SupervisorGaveUp as exc:
                    self._give_up(
                        f"instances keep dying: {exc.restarts + 1} unexpected exits within "
                        f"{exc.period:g} s (last: {exc.__cause__}); see their logs above; "
                        "stopped all instances"
                    )
            timers.cancel_scope.cancel()
        self._nursery = None
        if self.failure is not None:
            self._echo(f"motet: error: {self.failure}")
            return 1
        if self.forced_by is not None:
            return 128 + self.forced_by
        for line in self.stop_errors:
            self._echo(f"motet: error: {line}")
        return 1 if self.stop_errors else 0

    def stop(self) -> None:
        """Graceful: SIGTERM every child and restart none."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self._signal_all(signal.SIGTERM)
        self._scope.cancel()

    def force(self, signum: int = signal.SIGTERM) -> None:
        """The second stop signal: children stop at once, SIGKILL after `kill_grace`."""
        self.stop()
        self.forced_by = signum
        self._signal_all(signal.SIGTERM)
        if self._nursery is not None:
            self._nursery.start_soon(self._kill_after_grace)

    async def _kill_after_grace(self) -> None:
        await trio.sleep(self.policy.kill_grace)
        self._signal_all(signal.SIGKILL)

    def _signal_all(self, sig: int) -> None:
        for process in list(self.live.values()):
            if process.returncode is None:
                process.send_signal(sig)

    def _on_event(self, event: SupervisorEvent) -> None:
        if event.kind == "gave_up":
            self.stop()  # every instance drains at once, not one after the other

    def _give_up(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.stop()

    async def _serve(self, instance: _Instance, *, task_status: ChildTaskStatus) -> None:
        """One process of `instance`, after its backoff: returns when it was stopped,
        raises InstanceExited when it exited by itself."""
        # Every stop goes through stop(), which has SIGTERMed the process: the supervisor
        # must then wait for it to exit, not cancel it (that would kill it).
        task_status.trap_shutdown()
        task_status.started()
        if instance.restarting is not None:
            # Said only now that the supervisor restarts us, not when it gives up instead.
            self._echo(instance.restarting)
            instance.restarting = None
            with trio.move_on_after(instance.delay):
                await self.stopping.wait()
        if self.stopping.is_set():
            return
        started = trio.current_time()
        process = await self._spawn(instance.number)
        self.live[instance.number] = process
        self._echo(f"motet: instance {instance.number} started (pid {process.pid})")
        if self.stopping.is_set():  # stop() ran while this child was being started
            process.send_signal(signal.SIGTERM)
        try:
            status = await process.wait()
        finally:
            self.live.pop(instance.number, None)
            if process.returncode is None:  # cancelled: leave no orphan
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()
        what = f"instance {instance.number} (pid {process.pid}) {describe_exit(status)}"
        if self.stopping.is_set():
            if status not in (0, -signal.SIGTERM, -signal.SIGKILL):
                self.stop_errors.append(f"{what} while stopping")
            return
        if status == EXIT_USER_ERROR:
            self._give_up(
                f"{what}: the project's steps or config are wrong (its error "
                "is above); not restarting, stopped all instances"
            )
            return
        ran = trio.current_time() - started
        instance.failures = 1 if ran >= self.policy.healthy_after else instance.failures + 1
        instance.delay = self.policy.backoff.delay(instance.failures)
        instance.restarting = f"motet: {what} unexpectedly; restarting it in {instance.delay:g} s"
        raise InstanceExited(what)


# -- the parent: a listening socket, real child processes, signals ------------------------


def run_instances(
    project: Project, instances: int, gateway: Any, config: Any, flags: dict[str, Any]
) -> int:
    """Serve the project with `instances` processes; returns the exit status."""
    from ..console._auth import check_bind, resolve_token
    from ..gateway._serve import hypercorn_config, listen_socket

    if project.backend(config.backend).name == "memory":
        raise UserError(
            f"--instances {instances} needs a backend the processes share: sqlite (the "
            "default) or redis; the memory backend lives inside one process, so each "
            "instance would have its own queues and every one would fire the cron"
        )
    # The children would each fail on these: say it once, before any process starts.
    check_bind(gateway.host, resolve_token(config.token))
    sock = listen_socket(gateway, hypercorn_config(gateway).backlog)
    try:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        click.echo(
            f"motet: starting {instances} instances on http://{shown}:{port} "
            "(SIGINT/SIGTERM stop them gracefully)",
            err=True,
        )
        supervisor = InstanceSupervisor(instances, ChildSpawner(project, flags, sock.fileno()))
        return trio.run(supervise, supervisor)
    finally:
        sock.close()


async def supervise(supervisor: InstanceSupervisor) -> int:
    """Run `supervisor` until its children are gone, forwarding SIGINT/SIGTERM to them."""
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:

            async def forward() -> None:
                async for signum in signals:
                    if supervisor.stopping.is_set():
                        click.echo("motet: second signal, stopping the instances now", err=True)
                        supervisor.force(signum)
                    else:
                        click.echo(
                            f"motet: stopping {supervisor.count} instances: finishing "
                            "requests and handlers in flight (signal again to stop at "
                            "once)",
                            err=True,
                        )
                        supervisor.stop()

            nursery.start_soon(forward)
            status = await supervisor.run()
            nursery.cancel_scope.cancel()
    return status


@attrs.frozen
class ChildSpawner:
    """Starts instance `i` as `python -m motet.cli._instances` with the socket fd and its
    spec in the environment (`SPEC_ENV`)."""

    project: Project
    flags: dict[str, Any]
    listen_fd: int

    def spec(self, instance: int, parent_fd: int) -> str:
        """What the child needs, as JSON. It travels in the child's environment, not on its
        command line: the flags may hold a backend URL with a password, and any user of the
        host can read a process's command line (`ps`), only its owner its environment."""
        return json.dumps(
            {
                "root": str(self.project.root),
                "debug": self.project.debug,
                "instance": instance,
                "listen_fd": self.listen_fd,
                "parent_fd": parent_fd,
                "flags": self.flags,
            }
        )

    async def __call__(self, instance: int) -> ChildProcess:
        # The child holds the read end; this process holds the write end (never written)
        # until the child exits. If this process dies, the child reads EOF and stops.
        read_end, write_end = os.pipe()
        try:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "motet.cli._instances"],
                pass_fds=(self.listen_fd, read_end),
                env={
                    **os.environ,
                    INSTANCE_ENV: str(instance),
                    SPEC_ENV: self.spec(instance, read_end),
                },
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return PipedChild(process, write_end)


class PipedChild:
    """A trio.Process that closes its liveness pipe once it has exited."""

    def __init__(self, process: trio.Process, write_end: int) -> None:
        self.process = process
        self.pid = process.pid
        self._write_end: int | None = write_end

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait(self) -> int:
        status = await self.process.wait()
        if self._write_end is not None:
            os.close(self._write_end)
            self._write_end = None
        return status

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        self.process.kill()


# -- the child ------------------------------------------------------------------------------


class InstanceStream:
    """A text stream that marks every line with the instance: JSON lines get an "instance"
    key, other lines a `#i ` prefix. Each line is written to `target` in one call, so
    lines of several processes sharing a pipe interleave whole."""

    def __init__(self, target: IO[str], instance: int, *, json_lines: bool = False) -> None:
        self.target = target
        self.instance = instance
        self.json_lines = json_lines
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.target.write(self.mark(line) + "\n")
        return len(text)

    def mark(self, line: str) -> str:
        if self.json_lines and line.startswith("{") and line.endswith("}"):
            rest = line[1:].lstrip()
            return f'{{"instance": {self.instance}' + (", " + rest if rest != "}" else "}")
        return f"#{self.instance} {line}"

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


def child_main(raw_spec: str) -> int:
    """One instance: `motet start` on the inherited socket, until a signal or the parent
    goes away."""
    spec = json.loads(raw_spec)
    instance = int(spec["instance"])
    sys.stderr = InstanceStream(sys.stderr, instance)
    project = Project(Path(spec["root"]), bool(spec["debug"]))
    try:
        config, steps, gateway = configured(project, spec["flags"])
        log = InstanceStream(sys.stdout, instance, json_lines=config.log_format == "json")
        shared = attrs.evolve(gateway, listen_fd=int(spec["listen_fd"]))
        runtime = build_runtime(project, config, steps, shared, log_stream=log)
        return trio.run(serve_child, runtime, int(spec["parent_fd"]))
    except Exception as exc:
        if project.debug:
            raise
        report(exc)
        return exit_code(exc)
    finally:
        sys.stderr.flush()


async def serve_child(runtime: Any, parent_fd: int) -> int:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_orphaned, runtime, parent_fd)
        status = await serve_until_signalled(runtime)
        nursery.cancel_scope.cancel()
    return status


async def stop_when_orphaned(runtime: Any, parent_fd: int) -> None:
    """Stop gracefully once the parent's end of the pipe is closed (the parent died)."""
    os.set_blocking(parent_fd, False)
    while True:
        await trio.lowlevel.wait_readable(parent_fd)
        try:
            if not os.read(parent_fd, 1):
                break
        except BlockingIOError:
            continue
    click.echo("motet: the supervising process is gone; stopping", err=True)
    runtime.stop()


if __name__ == "__main__":
    sys.exit(child_main(os.environ.pop(SPEC_ENV)))
