"""`motet` commands: start, dev, emit, steps, graph, dlq, state, new."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import click

from ._app import Project, UserError, reports_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="motet", prog_name="motet", message="%(prog)s %(version)s")
@click.option(
    "--project",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The project folder (steps/, motet.toml).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, root: Path, debug: bool) -> None:
    """motet: Motia-style steps, queues, cron and state on trio."""
    ctx.obj = Project(root.resolve(), debug)


def _debug_later(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`motet start --debug` means what `motet --debug start` means: the flag is set on the
    root context (where errors are reported from) and on the project every context holds."""
    if not value:
        return
    ctx.find_root().params["debug"] = True
    at: click.Context | None = ctx
    while at is not None:
        if isinstance(at.obj, Project):
            at.obj = attrs.evolve(at.obj, debug=True)
        at = at.parent


def _accept_debug_everywhere(group: click.Group) -> None:
    """Give every subcommand (of nested groups too) its own `--debug`."""
    for command in group.commands.values():
        command.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                expose_value=False,
                callback=_debug_later,
                help="Show tracebacks for errors (as `motet --debug ...`).",
            )
        )
        if isinstance(command, click.Group):
            _accept_debug_everywhere(command)


def _environment_help() -> str:
    """The epilog of `start` and `dev`: every MOTET_* variable and the setting it sets."""
    from ..project import ENV_VARS

    width = max(map(len, ENV_VARS.values()))
    rows = "\n".join(f"  {var:{width}}  {key}" for key, var in ENV_VARS.items())
    return (
        "Environment variables set the motet.toml key of the same name; a flag wins over a "
        f"variable, a variable over motet.toml.\n\n\b\n{rows}"
    )


def _serve_options(f: Any) -> Any:
    f = click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warn", "error"]),
        help="Default: motet.toml's log_level (info).",
    )(f)
    f = click.option(
        "--log-format",
        type=click.Choice(["pretty", "json"]),
        help="Default: motet.toml's log_format (pretty).",
    )(f)
    f = click.option("--steps", "steps_dir", help="Steps folder (default: steps).")(f)
    f = click.option("--backend", help="memory | sqlite | sqlite:///path.db | redis://host:port/0")(
        f
    )
    f = click.option("--host", help="Bind address (default 127.0.0.1).")(f)
    f = click.option("--port", type=click.IntRange(0, 65535), help="Port (default 3000).")(f)
    return f


@main.command(epilog=_environment_help())
@_serve_options
@click.option(
    "--instances",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes sharing the backend and the port.",
)
@click.option(
    "--parent-fd",
    type=int,
    hidden=True,
    help="Stop gracefully at EOF on this fd (`motet dev` passes its pipe).",
)
@click.pass_obj
@reports_errors
def start(project: Project, instances: int, parent_fd: int | None, **flags: Any) -> None:
    """Run the project: serve its HTTP steps, consume its queues, fire its cron.

    SIGINT / SIGTERM stop gracefully (requests and handlers in flight finish); a second
    signal stops at once."""
    from ._start import run_instances, serve_project

    if instances > 1:
        status = run_instances(project, instances, flags)
    else:
        status = serve_project(project, flags, parent_fd=parent_fd)
    if status:
        raise SystemExit(status)


@main.command(epilog=_environment_help())
@_serve_options
@click.pass_obj
@reports_errors
def dev(project: Project, **flags: Any) -> None:
    """Like start, in a child process that is restarted when a .py or .toml file of the
    project changes. State is kept in the backend: sqlite (the default) or redis keep it
    across restarts, memory does not."""
    from ._dev import develop

    status = develop(project, flags)
    if status:
        raise SystemExit(status)


@main.command()
@click.argument("topic")
@click.argument("data", default="null")
@click.option("--group", help="Message group (fifo queues).")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.pass_obj
@reports_errors
def emit(project: Project, topic: str, data: str, group: str | None, backend: str | None) -> None:
    """Publish DATA (JSON) on TOPIC to the project's backend."""
    from ._data import emit_message

    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"DATA is not JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}): {data!r}; quote it for the shell, e.g. "
            f"""motet emit {topic} '{{"id": 1}}'"""
        ) from exc
    message_id = emit_message(project, topic, payload, group=group, backend=backend)
    click.echo(message_id)


@main.command("steps")
@click.option("--steps", "steps_dir", help="Steps folder (default: steps).")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 2 when there are warnings (topics that connect nothing, misnamed step files).",
)
@click.pass_obj
@reports_errors
def list_steps(project: Project, steps_dir: str | None, strict: bool) -> None:
    """A table of steps, their triggers and topics; then the warnings `motet start` would
    log (on stderr)."""
    from ._inspect import project_warnings, steps_table

    steps = project.steps(steps_dir)
    click.echo(steps_table(steps))
    warnings = project_warnings(project, steps, steps_dir)
    for line in warnings:
        click.echo(f"motet: warning: {line}", err=True)
    if strict and warnings:
        raise UserError(f"{len(warnings)} warning(s), which --strict makes errors")


@main.command()
@click.option("--steps", "steps_dir", help="Steps folder (default: steps).")
@click.pass_obj
@reports_errors
def graph(project: Project, steps_dir: str | None) -> None:
    """The flows as a Mermaid diagram."""
    from ._inspect import mermaid

    click.echo(mermaid(project.steps(steps_dir)))


@main.group()
def dlq() -> None:
    """Dead letters: list, show, re-drive and discard."""


@dlq.command("list")
@click.option("--step", help="Only this step's dead letters.")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@reports_errors
def dlq_list(project: Project, step: str | None, backend: str | None, as_json: bool) -> None:
    from ._data import list_dead_letters

    for line in list_dead_letters(project, step=step, backend=backend, as_json=as_json):
        click.echo(line)


@dlq.command("show")
@click.argument("letter_id", metavar="ID")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_obj
@reports_errors
def dlq_show(project: Project, letter_id: str, backend: str | None, as_json: bool) -> None:
    """One dead letter in full: its message, error and the last attempt's traceback."""
    from ._data import show_dead_letter

    for line in show_dead_letter(project, letter_id, backend=backend, as_json=as_json):
        click.echo(line)


@dlq.command("redrive")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Re-drive every dead letter (of --step).")
@click.option("--step", help="With --all: only this step's dead letters.")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.pass_obj
@reports_errors
def dlq_redrive(
    project: Project, ids: tuple[str, ...], everything: bool, step: str | None, backend: str | None
) -> None:
    """Put dead letters back in their queue (attempts reset)."""
    from ._data import redrive

    if not ids and not everything:
        raise click.UsageError("name dead-letter ids, or pass --all")
    count = redrive(project, list(ids), everything=everything, step=step, backend=backend)
    click.echo(f"re-drove {count} dead letter(s)")


@dlq.command("discard")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Discard every dead letter (of --step).")
@click.option("--step", help="With --all: only this step's dead letters.")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.pass_obj
@reports_errors
def dlq_discard(
    project: Project, ids: tuple[str, ...], everything: bool, step: str | None, backend: str | None
) -> None:
    """Delete dead letters for good."""
    from ._data import discard

    if not ids and not everything:
        raise click.UsageError("name dead-letter ids, or pass --all")
    count = discard(project, list(ids), everything=everything, step=step, backend=backend)
    click.echo(f"discarded {count} dead letter(s)")


@main.group("state")
def state_group() -> None:
    """Read state: get a key, list a namespace."""


@state_group.command("get")
@click.argument("namespace")
@click.argument("key")
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.pass_obj
@reports_errors
def state_get(project: Project, namespace: str, key: str, backend: str | None) -> None:
    from ._data import read_state

    value = read_state(project, namespace, key, backend=backend)
    if value is None:
        click.echo(f"motet: no key {key!r} in state namespace {namespace!r}", err=True)
        raise SystemExit(1)
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@state_group.command("list")
@click.argument("namespace", required=False)
@click.option("--backend", help="Backend (default: motet.toml's).")
@click.pass_obj
@reports_errors
def state_list(project: Project, namespace: str | None, backend: str | None) -> None:
    """Keys and values of NAMESPACE, or the namespaces when none is given."""
    from ._data import list_state

    for line in list_state(project, namespace, backend=backend):
        click.echo(line)


@main.command()
@click.argument("name")
@click.pass_obj
@reports_errors
def new(project: Project, name: str) -> None:
    """Create a project folder NAME with a working example step and its test."""
    from ._scaffold import create_project, next_steps

    target = create_project(project.root / name)
    click.echo(f"created {target}\n\n{next_steps(name)}")


_accept_debug_everywhere(main)
