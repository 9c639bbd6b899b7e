"""Which files are Motia's: the names looked for in a project folder, and whether a file by
one of them is worth reading. Apart from the reader (`_iii_config`), so a project without a
Motia file does not load it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MOTIA_FILES", "looks_like_iii"]

# Looked for in the project folder, in this order; `config.yaml` only when it is an iii
# engine file (a `modules:` list of `modules::...` classes), since the name is common.
MOTIA_FILES = ("iii-config.yaml", "iii-config.yml", "config.yaml")


def looks_like_iii(file: Path) -> bool:
    """Whether `file` is worth reading as a Motia/iii file: `iii-config.y*ml` always,
    `config.yaml` only when it has a `modules:` list of iii classes."""
    if file.name != "config.yaml":
        return True
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(re.search(r"^modules\s*:", text, re.M)) and "modules::" in text
