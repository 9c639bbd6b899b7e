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
    "pyproject.toml": """\
[tool.pytest.ini_options]
trio_mode = true
""",
}


def create_project(target: Path) -> Path:
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} exists and is not empty; choose a new name")
    if not target.name.replace("-", "_").replace(".", "_").isidentifier():
        raise UserError(
            f"{target.name!r} is not a usable project name: use letters, digits, - and _"
        )
    for relative, text in FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
