"""The README's "Testing your steps" snippets run as a user would run them: copied into a
test file beside the example app's `steps/`, under pytest in a fresh process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _testing_snippets() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your steps", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_test_snippets_pass_on_the_example_app(tmp_path: Path) -> None:
    snippets = _testing_snippets()
    assert len(snippets) >= 2
    shutil.copytree(
        ROOT / "steps", tmp_path / "steps", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "motet.toml", tmp_path / "motet.toml")
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\ntrio_mode = true\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    for i, snippet in enumerate(snippets):
        (tests / f"test_readme_{i}.py").write_text(snippet)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTET_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(snippets)} passed" in result.stdout
