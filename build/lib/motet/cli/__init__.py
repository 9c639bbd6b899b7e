"""The `motet` command."""

from .._public import publish as _publish
from ._main import main as main

__all__ = ["main"]

_publish(__name__, globals())
