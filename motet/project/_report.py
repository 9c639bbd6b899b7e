"""The start report: everything a project asks for that motet does not honour, one line each,
said once when the runtime starts (`motet start`, `motet dev`, `open_runtime`), never
silently dropped.

    config: iii-config.yaml (a Motia project: async handlers run on asyncio)
    config: both iii-config.yaml and motet.toml are read; for each key both set, motet.toml wins ...
    not used: iii-config.yaml line 3: modules[0] (modules::stream::StreamModule) is not used: ...
    not used: step 'SendEmail' (steps/send_email_step.py): includeFiles ...

The config's lines come from reading its files (`ProjectConfig.report`); the steps' from
loading them (`Step.unhonoured`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..steps._model import Step
from ._config import ProjectConfig

__all__ = ["start_report"]


def start_report(project: ProjectConfig, steps: Sequence[Step]) -> list[str]:
    """The lines, config first, then each step's in the order the steps were loaded."""
    lines = list(project.report)
    for step in steps:
        where = f"step {step.name!r}" + (f" ({step.file.name})" if step.file else "")
        for line in step.unhonoured:
            said = line if step.name in line else f"{where}: {line}"
            lines.append(said if said.startswith("not used: ") else f"not used: {said}")
    return lines
