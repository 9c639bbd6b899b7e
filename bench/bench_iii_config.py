"""What reading Motia's iii-config.yaml costs a start: PyYAML's import (paid only by a project
that has the file; `import motet` never loads it), and assembling the settings of
examples/motia_project (iii-config.yaml) against the same steps with an equivalent motet.toml.

Import times are `-X importtime` cumulative figures from fresh interpreters, best of N;
assembly times are the mean of many calls in this process, after one warm-up call.

    python bench/bench_iii_config.py [--rounds 10] [--calls 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "motia_project"
TOML = """\
[queues."order.placed"]
max_retries = 2
retry_delay = 400
dead_letter_queue = "order.failed"

[queues."ledger.entry"]
strategy = "fifo"
max_retries = 3
retry_delay = 200

[queues."thumbnail.requested"]
concurrency = 2
"""


def import_time(module: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            capture_output=True,
            text=True,
        )
        for line in done.stderr.splitlines():
            fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
            if len(fields) == 3 and fields[2] == module:
                best = min(best, int(fields[1]) / 1e6)
    return best


def assemble_time(root: Path, calls: int) -> float:
    from motet.project import assemble_config

    assemble_config(root, environ={})
    t0 = time.perf_counter()
    for _ in range(calls):
        assemble_config(root, environ={})
    return (time.perf_counter() - t0) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    yaml_import = import_time("yaml", args.rounds)
    motet_import = import_time("motet", args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        toml_root = Path(tmp)
        (toml_root / "motet.toml").write_text(TOML)
        toml = assemble_time(toml_root, args.calls)
    iii = assemble_time(EXAMPLE, args.calls)
    print(f"import yaml   {yaml_import * 1e3:7.1f} ms  (import motet: {motet_import * 1e3:.0f} ms)")
    print(f"motet.toml    {toml * 1e3:7.2f} ms per assemble_config")
    print(f"iii-config    {iii * 1e3:7.2f} ms per assemble_config ({iii / toml:.1f}x)")


if __name__ == "__main__":
    main()
