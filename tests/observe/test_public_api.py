"""motet.observe's public names import from their public path."""

from __future__ import annotations

import subprocess
import sys

import motet.observe


def test_every_public_name_is_importable() -> None:
    exported = motet.observe.__all__
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(motet.observe, name) is not None, name


def test_import_motet_does_not_import_observe() -> None:
    code = "import sys, motet; print('motet.observe' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
