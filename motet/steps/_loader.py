"""Loading one step: `load_step(config, handler)` and the trigger constructors that
`http()`/`queue()`/`cron()`/`state()` in `_model` call lazily.

Files are found and imported by `_discovery`; this module turns what a file exported into a
`Step`, and is what `motet.testing` uses for steps built in a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._config import step_from_config
from ._model import Step, StepDefinition
from ._triggers import cron_trigger as cron_trigger
from ._triggers import http_trigger as http_trigger
from ._triggers import queue_trigger as queue_trigger
from ._triggers import state_trigger as state_trigger

__all__ = [
    "cron_trigger",
    "http_trigger",
    "load_step",
    "queue_trigger",
    "state_trigger",
]


def load_step(config: Any, handler: Any = None, *, file: Path | str | None = None) -> Step:
    """A validated `Step` from a config (either form) and its handler.

    `config` may also be a `step(config, handler)` definition, then `handler` is omitted.
    Raises StepDefinitionError naming the file (if given), the step and the field.
    """
    if isinstance(config, StepDefinition):
        config, handler = config.config, config.handler
    return step_from_config(config, handler, file=Path(file) if file is not None else None)
