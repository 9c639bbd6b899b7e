"""Soak the runtime model test (tests/runtime/test_model.py) with many more examples than CI.

    .venv/bin/python bench/soak_model.py [--examples 5000] [--backend memory|sqlite|both]
        [--steps 30] [--derandomize]

Each example opens a fresh runtime, runs up to `--steps` random rules (emits, failures,
timeouts, state writes, time jumps, actor crashes, redrives, discards), settles it and checks
where every message ended. Examples are random on each run unless `--derandomize` (then the
same as CI's). A failure prints the shrunk rule sequence and a `@reproduce_failure(...)` blob,
and exits 1. Prints the examples run, what they reached, and the CPU time per backend.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime import test_model as model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="per backend")
    parser.add_argument("--backend", choices=["memory", "sqlite", "both"], default="both")
    parser.add_argument("--steps", type=int, default=30, help="rules per example, at most")
    parser.add_argument("--derandomize", action="store_true", help="CI's examples, not new ones")
    args = parser.parse_args()
    backends = ["memory", "sqlite"] if args.backend == "both" else [args.backend]
    for backend in backends:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            model.run_model(backend, args.examples, derandomize=args.derandomize, steps=args.steps)
        finally:
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            ran = model.EXAMPLES[backend]
            print(
                f"{backend}: {ran} examples, CPU {cpu:.1f} s ({1000 * cpu / max(ran, 1):.1f} ms "
                f"each), wall {wall:.1f} s",
                flush=True,
            )
    print(model.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
