"""Project configuration (`motet.toml` or `[tool.motet]`, the `MOTET_*` environment, flags
and arguments, assembled in one place) and queue option resolution."""

from .._public import publish as _publish
from ._assemble import ENV_VARS as ENV_VARS
from ._assemble import assemble_config as assemble_config
from ._config import ProjectConfig as ProjectConfig
from ._config import load_project as load_project
from ._config import resolve_queue_options as resolve_queue_options

__all__ = ["ENV_VARS", "ProjectConfig", "assemble_config", "load_project", "resolve_queue_options"]

_publish(__name__, globals())
