"""How long `import motet` takes, and which web framework modules it loads.

Each round starts a fresh interpreter (nothing cached in `sys.modules`), so the figure is what a
CLI command or a worker pays before running anything. Baseline in the same run: a fresh
interpreter that imports nothing but `sys` (the interpreter's own start-up), so the ratio and
the difference are steadier than the absolute times on a shared machine. Best of N rounds.

    python bench/bench_import.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

WEB = ("quart", "werkzeug", "hypercorn", "h11", "flask", "jinja2")
PROBE = "import sys, json; import motet; print(json.dumps([m for m in {web} if m in sys.modules]))"


def best_of(rounds: int, code: str) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE.format(web=WEB)], check=True, capture_output=True, text=True
    ).stdout.strip()
    bare = best_of(args.rounds, "import sys")
    motet = best_of(args.rounds, "import motet")
    print(f"web framework modules loaded by `import motet`: {loaded}")
    print(f"bare interpreter: {bare * 1000:.0f} ms (best of {args.rounds})")
    print(f"import motet:     {motet * 1000:.0f} ms (best of {args.rounds})")
    print(f"import motet alone: {(motet - bare) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
