"""motet's one error tree, named by who is at fault.

    MotetError
    ├── StepDefinitionError      a step file or its config is wrong (carries file, step, field)
    ├── ProjectConfigError       motet.toml / [tool.motet] is wrong (carries file, field)
    ├── InputValidationError     a payload does not match a step's schema (carries messages)
    ├── UndeclaredTopicError     a handler emitted a topic its step does not declare
    ├── HandlerError             a handler raised; wraps the original (settle(fail_fast=True))
    ├── HandlerTimeout           a handler exceeded its per-attempt time limit
    ├── NonRetryable             raised by a handler: this message can never succeed, so it goes
    │                            to dead letters at once, without retries (carries the reason)
    ├── MailboxFull              send_nowait on a full mailbox
    ├── SupervisorGaveUp         restart intensity exceeded; chained to the last failure
    ├── BackendError             the storage backend misbehaved
    │   └── BackendUnavailable   the backend cannot be reached or opened (carries the cause)
    └── GatewayError             the HTTP gateway could not start (bind, token rules)

Every message says what went wrong, where, what was expected and what was got.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class MotetError(Exception):
    """Base of every error motet raises on purpose."""


class StepDefinitionError(MotetError):
    """A step file or config is invalid. Raised while loading, before anything runs."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        step: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = Path(file) if file is not None else None
        self.step = step
        self.field = field
        self.reason = message
        where = []
        if file is not None:
            where.append(str(file))
        if step is not None:
            where.append(f"step {step!r}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ProjectConfigError(MotetError):
    """The project configuration file is invalid."""

    def __init__(self, message: str, *, file: Path | str | None = None, field: str | None = None):
        self.file = Path(file) if file is not None else None
        self.field = field
        self.reason = message
        where = ", ".join(
            x for x in (str(file) if file else None, f"field {field!r}" if field else None) if x
        )
        super().__init__(f"{where}: {message}" if where else message)


class InputValidationError(MotetError):
    """A payload failed validation; `messages` are cattrs-style `... @ $.path` strings."""

    def __init__(self, messages: Sequence[str], *, what: str = "input") -> None:
        self.messages = list(messages)
        self.what = what
        super().__init__(f"invalid {what}: " + "; ".join(self.messages))


class UndeclaredTopicError(MotetError):
    """A handler emitted to a topic that is not in its step's `emits`/`enqueues`."""

    def __init__(self, step: str, topic: str, declared: Sequence[str]) -> None:
        self.step = step
        self.topic = topic
        self.declared = tuple(declared)
        listed = ", ".join(repr(t) for t in self.declared) or "none"
        super().__init__(
            f"step {step!r} emitted topic {topic!r}, which it does not declare "
            f"(declared: {listed}); add it to the step's `emits`/`enqueues`"
        )


class HandlerError(MotetError):
    """A handler raised. The original exception is `__cause__` and `.original`."""

    def __init__(self, step: str, message_id: str | None, original: BaseException) -> None:
        self.step = step
        self.message_id = message_id
        self.original = original
        super().__init__(
            f"handler of step {step!r} failed"
            + (f" on message {message_id}" if message_id else "")
            + f": {type(original).__name__}: {original}"
        )


class HandlerTimeout(MotetError):
    """A handler exceeded its per-attempt `timeout`."""

    def __init__(self, step: str, seconds: float) -> None:
        self.step = step
        self.seconds = seconds
        super().__init__(f"handler of step {step!r} timed out after {seconds:g} s")


class NonRetryable(MotetError):
    """Raise from a handler to say this message can never succeed (a malformed order, a
    refused card): it goes to dead letters at once with `reason`, without retries.

        raise NonRetryable(f"order {order_id} has no items")
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MailboxFull(MotetError):
    """`send_nowait` found the mailbox at capacity."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        super().__init__(f"mailbox {name!r} is full (capacity {capacity})")


class SupervisorGaveUp(MotetError):
    """A supervisor exceeded its restart intensity; `__cause__` is the last failure."""

    def __init__(self, supervisor: str, child: str, restarts: int, period: float) -> None:
        self.supervisor = supervisor
        self.child = child
        self.restarts = restarts
        self.period = period
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} failed more than "
            f"{restarts} times in {period:g} s"
        )


class BackendError(MotetError):
    """The storage backend failed an operation."""


class BackendUnavailable(BackendError):
    """The backend cannot be opened or reached. `cause` says why; the message says what to do."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        self.cause = cause
        super().__init__(message)


class GatewayError(MotetError):
    """The HTTP gateway cannot start as configured."""


def describe(exc: BaseException) -> str:
    """`Type: message` of the error that matters: single-error groups are unwrapped."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def find_error(exc: BaseException, kind: type[E], *, causes: bool = False) -> E | None:
    """The first `kind` in `exc`, looking inside exception groups (a handler's or the
    runtime's nurseries wrap what they raise) and, with `causes`, down `raise ... from`."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find_error(inner, kind, causes=causes)
            if found is not None:
                return found
    if causes and exc.__cause__ is not None:
        return find_error(exc.__cause__, kind, causes=causes)
    return None
