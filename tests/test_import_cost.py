"""`import motet` stays light: the step model, runtime and actors load no web framework.

A worker, a CLI data command or a library embedding motet pays for Quart, werkzeug and hypercorn
only when it serves HTTP. Checked in a fresh interpreter, since this test process has long
imported them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WEB_FRAMEWORKS = ("quart", "quart_trio", "werkzeug", "hypercorn", "h11", "h2", "flask", "jinja2")


def loaded_after(statement: str) -> list[str]:
    probe = (
        f"import sys, json\n{statement}\n"
        f"print(json.dumps(sorted(m for m in {WEB_FRAMEWORKS!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))  # after any log lines


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
    # The checks here would pass vacuously if the probe could not see modules at all.
    assert "quart" in loaded_after("from motet.gateway import build_app")


SERVE_THE_EXAMPLE_APP = f"""
import trio, motet
from motet.gateway import GatewayOptions
async def main():
    async with motet.open_runtime(
        {str(ROOT / "steps")!r}, root={str(ROOT)!r}, backend="memory",
        serve=GatewayOptions(port=0), telemetry=False,
    ) as runtime:
        assert runtime.gateway_urls
trio.run(main)
"""


def test_serving_http_loads_hypercorn_but_no_web_framework() -> None:
    """`motet start` and `open_runtime(serve=...)` serve a plain ASGI app: Quart, Flask and
    werkzeug (and hypercorn's asyncio worker, which Quart imports) stay out of the process,
    about 13 MiB of resident memory per instance."""
    loaded = loaded_after(SERVE_THE_EXAMPLE_APP)
    assert "hypercorn" in loaded and "h11" in loaded
    assert not {"quart", "quart_trio", "flask", "werkzeug", "jinja2"} & set(loaded)


def test_asyncio_loads_only_for_steps_that_run_on_it() -> None:
    """The asyncio bridge imports asyncio when it starts its loop: a process whose steps all
    run on trio (the example app) does not carry it (about 1.5 MiB resident)."""
    probe = f"import sys\n{SERVE_THE_EXAMPLE_APP}\nprint('asyncio' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "False"


def test_serving_on_sqlite_leaves_out_what_the_app_does_not_use(
    tmp_path: Path,
) -> None:
    """What a served process on SQLite does not need stays out of it: the memory backend's
    code, difflib (loaded only to suggest a topic in a start-time warning), the reader of
    Motia's config files (the example app has none), the operator's endpoints (loaded for
    the first operator request), zoneinfo with the build configuration it reads (the
    example app's cron steps run in UTC, the default: about 0.3 MiB), Motia's streams (the
    example app declares none: about 0.25 MiB) and the context asyncio handlers get."""
    served = SERVE_THE_EXAMPLE_APP.replace(
        'backend="memory"', f"backend={'sqlite:' + str(tmp_path / 'app.db')!r}"
    )
    modules = (
        "motet.backends._memory",
        "difflib",
        "motet.project._iii_config",
        "motet.console._api",
        "zoneinfo",
        "sysconfig",
        "motet.streams",
        "motet.gateway._streams",
        "motet.actors._asyncio_context",
    )
    probe = f"import sys\n{served}\nprint(*(m in sys.modules for m in {modules!r}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == " ".join(["False"] * len(modules))


def test_a_project_that_uses_them_loads_zoneinfo_and_streams(tmp_path: Path) -> None:
    # The probe above would pass vacuously if these were never loaded at all.
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "tick_step.py").write_text(
        "config = {'name': 'Tick', 'triggers': [{'type': 'cron', 'expression': '0 8 * * *',"
        " 'timezone': 'Europe/Paris'}]}\n"
        "async def handler(ctx):\n    pass\n"
    )
    (steps / "progress_stream.py").write_text("config = {'name': 'progress'}\n")
    served = SERVE_THE_EXAMPLE_APP.replace(repr(str(ROOT / "steps")), repr(str(steps)))
    served = served.replace(repr(str(ROOT)), repr(str(tmp_path)))
    modules = ("zoneinfo", "motet.streams", "motet.gateway._streams")
    probe = f"import sys\n{served}\nprint(*(m in sys.modules for m in {modules!r}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "True True True"
