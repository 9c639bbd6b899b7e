"""Project configuration (Motia's `iii-config.yaml`, `motet.toml` or `[tool.motet]`, the
`MOTET_*` environment, flags and arguments, assembled in one place), queue option resolution
and the start report (what motet does not honour, one line each)."""

from .._public import publish as _publish
from ._assemble import CONFIG_ENV as CONFIG_ENV
from ._assemble import ENV_VARS as ENV_VARS
from ._assemble import assemble_config as assemble_config
from ._config import ProjectConfig as ProjectConfig
from ._config import load_project as load_project
from ._config import resolve_queue_options as resolve_queue_options
from ._report import start_report as start_report

__all__ = [
    "CONFIG_ENV",
    "ENV_VARS",
    "ProjectConfig",
    "assemble_config",
    "load_project",
    "resolve_queue_options",
    "start_report",
]

_publish(__name__, globals())
