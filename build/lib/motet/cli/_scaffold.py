"""`motet new NAME`: a project folder with a working example step and its test."""

from __future__ import annotations

from pathlib import Path

from ._app import UserError

FILES: dict[str, str] = {
    "motet.toml": """\
# motet project configuration. Every key is optional.
steps = "steps"
backend = "sqlite"      # memory | sqlite | sqlite:///path.db | redis://host:6379/0
port = 3000

[queues."greeting.requested"]
max_retries = 3
retry_delay = 1000      # ms, doubles per retry
""",
    "steps/__init__.py": "",
    "steps/greet_step.py": '''\
"""POST /greet {"name": ...} -> 202, then a background step stores the greeting."""

import attrs

from motet import http


@attrs.frozen
class GreetRequest:
    name: str


config = {
    "name": "Greet",
    "triggers": [http("POST", "/greet", body=GreetRequest)],
    "enqueues": ["greeting.requested"],
    "flows": ["greetings"],
}


async def handler(request, ctx):
    await ctx.emit("greeting.requested", {"name": request.body.name})
    ctx.logger.info("greeting requested", name=request.body.name)
    return {"status": 202, "body": {"status": "queued", "traceId": ctx.trace_id}}
''',
    "steps/store_greeting_step.py": '''\
"""Stores a greeting for every greeting.requested message."""

import attrs

from motet import queue


@attrs.frozen
class Greeting:
    name: str


config = {
    "name": "StoreGreeting",
    "triggers": [queue("greeting.requested", input=Greeting)],
    "flows": ["greetings"],
}


async def handler(greeting, ctx):
    await ctx.state.set("greetings", greeting.name, {"text": f"Hello, {greeting.name}!"})
    ctx.logger.info("greeting stored", name=greeting.name)
''',
    "tests/test_greet.py": """\
from pathlib import Path

from motet.testing import open_test_runtime

ROOT = Path(__file__).resolve().parent.parent


async def test_greeting_is_stored(autojump_clock):
    async with open_test_runtime("steps", root=ROOT) as app:
        response = await app.http.post("/greet", json={"name": "Ada"})
        assert response.status == 202
        await app.settle(fail_fast=True)
        assert await app.state.get("greetings", "Ada") == {"text": "Hello, Ada!"}


async def test_a_name_must_be_a_string(autojump_clock):
    async with open_test_runtime("steps", root=ROOT) as app:
        response = await app.http.post("/greet", json={"name": 42})
        assert response.status == 400
""",
}

# Per project, {name} filled in: the dependencies (motet; motet[testing] for the tests) and
# how pytest runs them. An app, not a library: installing it installs its dependencies and
# packages none of its folders (two apps' `steps` would collide in site-packages).
PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["motet"]

[project.optional-dependencies]
test = ["motet[testing]"]

[tool.setuptools]
packages = []

[tool.pytest.ini_options]
trio_mode = true
"""

GITIGNORE = """\
.motet/
.venv/
__pycache__/
"""

INSTALL = "pip install -e '.[test]'"
SERVE = "motet dev"
TEST = "python -m pytest"

README = f"""\
# {{name}}

A motet app: steps in `steps/`, their tests in `tests/`.
Install with `{INSTALL}`, serve with `{SERVE}` (port 3000), test with `{TEST}`.
"""


def next_steps(name: str) -> str:
    """What `motet new` prints after creating `name`: commands that work as printed."""
    return (
        f"  cd {name}\n"
        f"  {INSTALL:<27}# motet, and pytest for the tests\n"
        f"  {SERVE:<27}# serve on :3000\n"
        f"  {TEST:<27}# run its tests"
    )


def create_project(target: Path) -> Path:
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} exists and is not empty; choose a new name")
    if not target.name.replace("-", "_").replace(".", "_").isidentifier():
        raise UserError(
            f"{target.name!r} is not a usable project name: use letters, digits, - and _"
        )
    files = {
        **FILES,
        "pyproject.toml": PYPROJECT.format(name=target.name),
        ".gitignore": GITIGNORE,
        "README.md": README.format(name=target.name),
    }
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
