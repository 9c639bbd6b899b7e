"""`motet start` tunes the garbage collector once started: start-up's garbage is collected,
what survived is frozen, what serving makes is collected as before, and the young threshold
is raised to `YOUNG_THRESHOLD`. The collector is process-wide, so these run in their own
processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from motet._gc import YOUNG_THRESHOLD

from ._project import DEADLINE, Motet, get_json, write_project

FREEZE = """\
import gc
import weakref

from motet._gc import YOUNG_THRESHOLD, tune_for_serving


class Node:
    pass


def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


garbage = cycle()
garbage_ref = weakref.ref(garbage)
del garbage  # unreachable, in a cycle: only the collector frees it
kept = cycle()
kept_ref = weakref.ref(kept)
gc.set_threshold(700, 10, 10)  # Python's default up to 3.12
frozen = tune_for_serving()
assert garbage_ref() is None, "start-up's garbage is collected before the freeze"
assert frozen == gc.get_freeze_count() and frozen > 1000, frozen
assert gc.get_count()[0] < 50  # what survived left the young generation
assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)

later = cycle()
later_ref = weakref.ref(later)
del later
gc.collect()
assert later_ref() is None, "what is made after the freeze is collected as before"

del kept
gc.collect()
assert kept_ref() is not None, "a frozen cycle stays: the documented cost"
gc.set_threshold(2000, 10, 10)  # Python 3.13's default: raised too
tune_for_serving()
assert gc.get_threshold()[0] == YOUNG_THRESHOLD > 2000
gc.set_threshold(YOUNG_THRESHOLD + 1, 10, 10)
tune_for_serving()
assert gc.get_threshold()[0] == YOUNG_THRESHOLD + 1, "a higher threshold is kept"
gc.disable()
gc.set_threshold(0)
tune_for_serving()
assert gc.get_threshold()[0] == 0, "automatic collection left off"
print("ok")
"""


def test_tuning_collects_start_up_garbage_first_and_spares_later_objects() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FREEZE], capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


FROZEN_STEP = textwrap.dedent(
    """\
    import gc

    from motet import http

    config = {"name": "Frozen", "triggers": [http("GET", "/frozen")]}


    async def handler(req, ctx):
        body = {"frozen": gc.get_freeze_count(), "young": gc.get_threshold()[0]}
        return {"status": 200, "body": body}
    """
)


def test_start_tunes_the_collector_once_started(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "app", files={"steps/__init__.py": "", "steps/frozen_step.py": FROZEN_STEP}
    )
    app = Motet(root, "start", "--port", "0", "--backend", "memory")
    try:
        url = app.started()
        status, body = get_json(f"{url}/frozen")
        assert status == 200
        assert body["frozen"] > 10_000  # modules, classes, the step, the runtime's actors
        assert body["young"] == YOUNG_THRESHOLD
        app.signal(signal.SIGTERM)
        assert app.wait() == 0
    finally:
        app.close()
