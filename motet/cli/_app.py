"""What every command needs: the project folder, its config, its steps and its backend,
and one place that turns motet's errors into a clear message and an exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from .._errors import MotetError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2  # the user's steps, config or arguments are wrong
EXIT_RUNTIME_ERROR = 1  # the runtime could not run (backend, bind, crash)


@attrs.frozen
class Project:
    root: Path
    debug: bool = False

    def config(self, **overrides: Any) -> Any:
        from ..project import load_project

        project = load_project(self.root)
        changes = {k: v for k, v in overrides.items() if v is not None}
        return attrs.evolve(project, **changes) if changes else project

    def steps(self, steps_dir: str | None = None) -> list[Any]:
        from ..steps import load_steps

        folder = self.root / (steps_dir or self.config().steps)
        if not folder.is_dir():
            raise click.ClickException(
                f"no steps folder at {folder}; run motet in a project folder (one with "
                f"steps/ and motet.toml) or pass --steps")
        return load_steps(folder)

    def backend(self, spec: str | None = None) -> Any:
        from ..backends import backend_from_url

        return backend_from_url(spec or self.config().backend, root=self.root)


def reports_errors(fn: F) -> F:
    """Print motet's errors as one line naming file and field; traceback only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.Abort, click.exceptions.Exit):
            raise
        except BaseException as exc:
            error = _first_motet_error(exc)
            if error is None or debug:
                if isinstance(exc, KeyboardInterrupt):
                    sys.exit(130)
                raise
            click.echo(f"motet: error: {error}", err=True)
            sys.exit(_exit_code(error))

    return wrapper  # type: ignore[return-value]


def _first_motet_error(exc: BaseException) -> MotetError | None:
    if isinstance(exc, MotetError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_motet_error(inner)
            if found is not None:
                return found
    cause = exc.__cause__
    return _first_motet_error(cause) if cause is not None else None


def _exit_code(error: MotetError) -> int:
    from .._errors import InputValidationError, ProjectConfigError, StepDefinitionError

    user = (StepDefinitionError, ProjectConfigError, InputValidationError)
    return EXIT_USER_ERROR if isinstance(error, user) else EXIT_RUNTIME_ERROR
