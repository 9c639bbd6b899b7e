"""SIGTERM under keep-alive load, many times: `python bench/sigterm_runs.py [RUNS]`.

Runs tests/cli/test_shutdown.py's keep-alive SIGTERM test with RUNS runs (default 100; CI
runs 10). Each run starts `motet start`, loads it with 8 keep-alive clients, sends SIGTERM
at a different load, and counts requests that were run but not answered (must be 0 in
every run). Prints pytest's summary; the exit status is pytest's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    runs = sys.argv[1] if len(sys.argv) > 1 else "100"
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            str(ROOT / "tests/cli/test_shutdown.py"),
            "-k",
            "keep_alive_load",
        ],
        cwd=ROOT,
        env={**os.environ, "MOTET_SIGTERM_RUNS": runs},
    )


if __name__ == "__main__":
    sys.exit(main())
