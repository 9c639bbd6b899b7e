"""Loading one step: `load_step(config, handler)`.

Files are found and imported by `_discovery`; this module turns what a file exported into a
`Step`, and is what `motet.testing` uses for steps built in a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._config import step_from_config
from ._model import Step, StepDefinition

__all__ = ["load_step"]


def load_step(config: Any, handler: Any = None, *, file: Path | str | None = None) -> Step:
    """A validated `Step` from a config (either form) and its handler.

    `config` may also be a `step(config, handler)` definition, then `handler` is omitted.
    Raises StepDefinitionError naming the file (if given), the step and the field.
    """
    if isinstance(config, StepDefinition):
        config, handler = config.config, config.handler
    return step_from_config(config, handler, file=Path(file) if file is not None else None)
