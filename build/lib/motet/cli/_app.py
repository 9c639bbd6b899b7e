"""What every command needs: the project folder, its config, its steps and its backend,
and one place that turns errors into one clear line and an exit code.

Exit codes: 0 done; 2 the user's steps, config or arguments are wrong (`UserError`, click's
usage errors, motet's StepDefinitionError / ProjectConfigError / InputValidationError);
1 the runtime could not run (backend, bind, a crash). Tracebacks only with `--debug`.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import click

from .._errors import MotetError, SupervisorGaveUp, describe, find_error
from .._redact import redact

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2  # the user's steps, config or arguments are wrong
EXIT_RUNTIME_ERROR = 1  # the runtime could not run (backend, bind, crash)


class UserError(click.ClickException):
    """Something the user asked for cannot be done as asked: one line, exit status 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(redact(f"motet: error: {self.format_message()}"), err=True, file=file)


@attrs.frozen
class Project:
    root: Path
    debug: bool = False

    def config(self, **flags: Any) -> Any:
        """The project's settings: its file < `MOTET_*` variables < these flags (None: not
        given), assembled as `open_runtime` assembles them."""
        from ..project import assemble_config

        return assemble_config(self.root, flags=True, **flags)

    def steps(self, steps_dir: str | None = None) -> list[Any]:
        from ..steps import load_steps

        folder = self.root / (steps_dir or self.config().steps)
        if not folder.is_dir():
            raise UserError(
                f"no steps folder at {folder}; run motet in a project folder (one with "
                f"steps/ and motet.toml), pass --project DIR, or pass --steps"
            )
        return load_steps(folder)

    def backend(self, spec: str | None = None) -> Any:
        """The backend object (not yet running). A spec no backend understands is the
        user's error; a backend that cannot open its storage fails later, in `run`."""
        from .._errors import BackendUnavailable
        from ..backends import backend_from_url

        if spec is None:
            config = self.config()
            spec, source = config.backend, config.origin("backend")
        else:
            source = "--backend"
        try:
            return backend_from_url(spec, root=self.root)
        except BackendUnavailable as exc:
            raise UserError(f"{source}: {exc}") from exc


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
        except KeyboardInterrupt:
            if debug:
                raise
            sys.exit(130)
        except Exception as exc:
            if debug:
                raise
            report(exc)
            sys.exit(exit_code(exc))

    return wrapper  # type: ignore[return-value]


def report(exc: BaseException) -> None:
    """One line on stderr: motet's own message when there is one, else the bug's type and
    message, its innermost frame, and how to see the rest. Credentials of any URL in it are
    redacted (a client library's message may quote the URL it was given)."""
    error = first_motet_error(exc)
    if error is not None:
        line = f"motet: error: {error}"
        if isinstance(error, SupervisorGaveUp) and error.__cause__ is not None:
            # The last line names the cause (a full disk), not only who gave up.
            line += f"; the last failure: {describe(error.__cause__)}"
        click.echo(redact(line), err=True)
        return
    inner = _innermost(exc)
    frames = traceback.extract_tb(inner.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    click.echo(
        redact(
            f"motet: error: {type(inner).__name__}: {inner}{where}; "
            "run with --debug for the traceback"
        ),
        err=True,
    )


def exit_code(exc: BaseException) -> int:
    from .._errors import InputValidationError, ProjectConfigError, StepDefinitionError

    user = (StepDefinitionError, ProjectConfigError, InputValidationError)
    error = first_motet_error(exc)
    return EXIT_USER_ERROR if isinstance(error, user) else EXIT_RUNTIME_ERROR


def first_motet_error(exc: BaseException) -> MotetError | None:
    return find_error(exc, MotetError, causes=True)


def _innermost(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
