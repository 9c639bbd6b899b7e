"""How long `import motet` takes, and which web framework modules it loads.

Each round starts a fresh interpreter (nothing cached in `sys.modules`), so the figure is what a
CLI command or a worker pays before running anything. Baseline in the same run: a fresh
interpreter that imports nothing but `sys` (the interpreter's own start-up), so the difference
is steadier than the absolute times on a shared machine. Also the interpreter's own count
(`-X importtime`, cumulative for the `motet` package), which leaves start-up out. Best of N.

    python bench/bench_import.py [--rounds 15]

To compare with an older tree, run it with that tree first on `PYTHONPATH`.
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


def best_importtime(rounds: int) -> float:
    """Best cumulative time of the `motet` package in `-X importtime` (the interpreter's own
    count, without its start-up), seconds."""
    best = float("inf")
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import motet"],
            check=True,
            capture_output=True,
            text=True,
        )
        for line in done.stderr.splitlines():
            fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
            if len(fields) == 3 and fields[2] == "motet":
                best = min(best, int(fields[1]) / 1e6)
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
    cumulative = best_importtime(args.rounds)
    print(
        f"-X importtime, cumulative for motet: {cumulative * 1000:.0f} ms (best of {args.rounds})"
    )


if __name__ == "__main__":
    main()
