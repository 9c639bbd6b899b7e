"""The container files (Dockerfile, compose.yaml, deploy/healthcheck.py): parsed, and the
image's command run as the image would run it (its ENTRYPOINT plus compose's command, its ENV
plus compose's environment, in a copy of /app), against a real redis-server. No image is
built here: there is no Docker on CI, and the base image would come from outside the package
registries this machine reaches."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .._redis_server import redis_server
from ..cli._project import Motet

REPO = Path(__file__).resolve().parents[2]
TOKEN = "container-test-token"


def dockerfile() -> dict[str, Any]:
    """ENV, ENTRYPOINT, HEALTHCHECK and COPY sources of the Dockerfile, continuations joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, Any] = {"env": {}, "copies": []}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            found["env"].update(pair.split("=", 1) for pair in shlex.split(rest))
        elif word == "ENTRYPOINT":
            found["entrypoint"] = json.loads(rest)
        elif word == "HEALTHCHECK":
            found["healthcheck"] = json.loads(rest.split(" CMD ", 1)[1])
        elif word == "COPY":
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            found["copies"].extend(args[:-1])
    return found


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_files_agree_with_each_other() -> None:
    image, services = dockerfile(), compose()["services"]
    for source in image["copies"]:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
    assert image["entrypoint"] == ["motet", "start"]
    assert image["env"]["MOTET_HOST"] == "0.0.0.0"
    assert image["healthcheck"] == ["python", "/usr/local/bin/motet-healthcheck"]
    assert "USER motet" in (REPO / "Dockerfile").read_text()  # not root
    app, redis = services["app"], services["redis"]
    assert app["command"] == ["--instances", "2"]
    assert app["environment"]["MOTET_BACKEND"] == "redis://redis:6379/0"
    assert "MOTET_TOKEN" in app["environment"]  # 0.0.0.0 without a token refuses to start
    assert redis["command"][-4:] == ["--appendonly", "yes", "--appendfsync", "always"]
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = REPO / "deploy" / "healthcheck.py"
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
    )


def test_the_containers_command_serves_the_example_app_on_redis(tmp_path: Path) -> None:
    image, app = dockerfile(), compose()["services"]["app"]
    root = tmp_path / "app"  # what the image's /app holds
    shutil.copytree(REPO / "steps", root / "steps")
    shutil.copy(REPO / "motet.toml", root / "motet.toml")
    with redis_server() as server:
        env = {
            **image["env"],
            **app["environment"],
            "MOTET_BACKEND": server.url,  # the compose service `redis`, here the test's own
            "MOTET_TOKEN": TOKEN,
            "MOTET_PORT": "0",
        }
        argv = image["entrypoint"] + app["command"]
        assert argv[0] == "motet"
        motet = Motet(root, *argv[1:], env=env)
        try:
            url = motet.started()
            port = url.rsplit(":", 1)[1]
            motet.started(2)  # both instances
            probe = {**os.environ, "MOTET_PORT": port, "MOTET_TOKEN": TOKEN}
            assert healthcheck(probe).returncode == 0
            wrong = healthcheck({**probe, "MOTET_TOKEN": "not-the-token"})
            assert wrong.returncode != 0 and "401" in wrong.stderr
            motet.signal(signal.SIGTERM)
            assert motet.wait() == 0
        finally:
            motet.close()
    records = motet.records()
    assert {r.get("backend") for r in records if r.get("msg") == "motet runtime started"} == {
        "redis"
    }
