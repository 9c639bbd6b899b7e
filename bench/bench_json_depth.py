"""Cost of the gateway's JSON depth pre-scan next to json.loads of the same body.

    .venv/bin/python bench/bench_json_depth.py

Bodies: a typical small one, a 15 KB list of 300 objects (more brackets than the limit, so
the full scan runs), and the 100 KB `[` * 100_000 bomb the scan exists for.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable

# White-box: this bench times the gateway's own depth check.
from motet.gateway._json_depth import DEFAULT_MAX_DEPTH, too_deep


def best_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    bodies = {
        "pet (66 B)": json.dumps(
            {"name": "Rex", "breed": "Labrador", "age": 3, "tags": ["a", "b"]}
        ).encode(),
        "300 objects (15 KB)": json.dumps(
            [{"id": i, "name": f"pet{i}", "tags": ["x", "y"]} for i in range(300)]
        ).encode(),
        "bomb (100 KB)": b"[" * 100_000,
    }
    for name, raw in bodies.items():
        number = 20_000 if len(raw) < 1_000 else 500
        scan = best_us(lambda raw=raw: too_deep(raw, DEFAULT_MAX_DEPTH), number)
        try:
            loads = f"{best_us(lambda raw=raw: json.loads(raw), number):.2f} us"
        except RecursionError:
            loads = "RecursionError"
        print(f"{name:22} scan {scan:8.2f} us   json.loads {loads}")


if __name__ == "__main__":
    main()
