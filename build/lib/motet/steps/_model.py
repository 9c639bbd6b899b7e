"""The frozen model every step loads into, whichever config form its file used.

Both Motia forms (0.x `type="api"|...` dicts and 1.0 `triggers=[...]`) are turned into a
`Step` by `motet.steps._loader`. `step()` is here; the trigger constructors users call in the
1.0 form, `http()`, `queue()`, `cron()` and `state()`, are defined (once) in `_triggers`, with
their validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from .._envelope import JSON, QueueStrategy
from ._paths import RoutePath, parse_path

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@attrs.frozen
class QueueOverrides:
    """Queue options set on a trigger or in the project config; None = not set here.

    Resolution order, later wins: built-in defaults, project `[queues."topic"]`, trigger.
    """

    max_retries: int | None = None
    retry_delay: int | None = None
    max_retry_delay: int | None = None
    concurrency: int | None = None
    dead_letter_queue: str | None = None
    strategy: QueueStrategy | None = None
    timeout: float | None = None
    lease: float | None = None
    prefetch: int | None = None


@attrs.frozen
class HttpTrigger:
    method: str  # upper case
    path: str  # as written: "/pets/:id" or "/pets/{id}"
    body: Any = None  # schema type (attrs / dataclass / TypedDict) or None
    query: Any = None  # optional schema for query parameters
    response: Mapping[int, Any] | None = None  # status -> schema, documentation/OpenAPI only
    timeout: float | None = None  # s, handler time limit -> 504
    type: Literal["http"] = "http"
    # The path parsed once, when the trigger is made: a bad path fails the step's load, and
    # the gateway routes (and OpenAPI documents) by this, never parsing the path again.
    route: RoutePath = attrs.field(
        init=False,
        eq=False,
        repr=False,
        default=attrs.Factory(lambda self: parse_path(self.path), takes_self=True),
    )


@attrs.frozen
class QueueTrigger:
    topic: str
    input: Any = None  # schema type or None (then the handler gets the JSON as is)
    options: QueueOverrides = QueueOverrides()
    type: Literal["queue"] = "queue"


@attrs.frozen
class CronTrigger:
    expression: str  # 5, 6 (seconds first) or 7 (seconds first, year last) fields
    timezone: str | None = None  # IANA name; None = project timezone (default UTC)
    skip_if_running: bool = True
    grace: float | None = None  # s, missed-tick grace; None = project default (60 s)
    type: Literal["cron"] = "cron"


@attrs.frozen
class StateTrigger:
    namespace: str
    filter: Mapping[str, JSON] | None = None  # equality on fields of the new value
    # condition(event) or condition(event, ctx), sync or async; raising fails the attempt
    condition: Callable[..., Any] | None = None
    events: tuple[str, ...] = ("created", "updated", "deleted")
    options: QueueOverrides = QueueOverrides()
    type: Literal["state"] = "state"


Trigger = HttpTrigger | QueueTrigger | CronTrigger | StateTrigger


@attrs.frozen
class Step:
    name: str
    triggers: tuple[Trigger, ...]
    handler: Callable[..., Any]
    enqueues: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    description: str = ""
    file: Path | None = None
    virtual_subscribes: tuple[str, ...] = ()  # noop steps: drawn in graphs only
    virtual_emits: tuple[str, ...] = ()
    # What the step's file asks for that motet does not honour (a Motia config key it
    # ignores, say), one human line each; `motet start` lists them once at start.
    unhonoured: tuple[str, ...] = ()

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [t for t in self.triggers if isinstance(t, kind)]


@attrs.frozen
class StepDefinition:
    """What `step(config, handler)` returns: unpacks as `config, handler = step(...)`."""

    config: Any
    handler: Callable[..., Any]

    def __iter__(self) -> Any:
        return iter((self.config, self.handler))


def step(config: Any, handler: Callable[..., Any] | None = None) -> Any:
    """`step(config, handler)` or `@step(config)` as a decorator. The result unpacks into
    `config, handler` (Motia's `export const { config, handler } = step(...)`)."""
    if handler is None:
        return lambda fn: StepDefinition(config, fn)
    return StepDefinition(config, handler)
