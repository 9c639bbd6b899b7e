"""Project configuration (`motet.toml` or `[tool.motet]`) and queue option resolution."""

from ._config import ProjectConfig as ProjectConfig
from ._config import load_project as load_project
from ._config import resolve_queue_options as resolve_queue_options

__all__ = ["ProjectConfig", "load_project", "resolve_queue_options"]
