"""`import motet` stays light: the step model, runtime and actors load no web framework.

A worker, a CLI data command or a library embedding motet pays for Quart, werkzeug and hypercorn
only when it serves HTTP. Checked in a fresh interpreter, since this test process has long
imported them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

WEB_FRAMEWORKS = ("quart", "quart_trio", "werkzeug", "hypercorn", "h11", "h2", "flask", "jinja2")


def loaded_after(statement: str) -> list[str]:
    probe = (
        f"import sys, json; {statement}; "
        f"print(json.dumps(sorted(m for m in {WEB_FRAMEWORKS!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout))


@pytest.mark.parametrize(
    "statement",
    [
        "import motet",
        "import motet.steps",
        "import motet.actors",
        "from motet import Request, Response, http, open_runtime",
        "from motet.steps import HttpInvoker, Request, Response",
    ],
)
def test_importing_motet_loads_no_web_framework(statement: str) -> None:
    assert loaded_after(statement) == []


def test_the_probe_sees_a_web_framework_when_one_is_imported() -> None:
    # The check above would pass vacuously if the probe could not see modules at all.
    assert "quart" in loaded_after("import motet.gateway")
