"""Looking for reference cycles: the garbage collector off while a test runs a path, then
what only the collector would free.

An object in a reference cycle is freed by the collector's next pass, not by reference
counting; `motet start` makes those passes rare (and freezes start-up's objects out of their
reach), so a cycle on a request's or a message's path keeps its payload alive meanwhile.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager


class Held:
    """Something a frame holds, that a weak reference can watch."""


def watched(held: list[weakref.ref[Held]]) -> Held:
    """A new `Held`, with a weak reference to it added to `held`."""
    payload = Held()
    held.append(weakref.ref(payload))
    return payload


@contextmanager
def collector_off() -> Iterator[None]:
    """Collect once, then keep the collector off for the block."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def left_for_the_collector(*kinds: type) -> list[str]:
    """The type names of the objects only the collector would free (those of `kinds`, when
    given), which it then frees."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [type(o).__name__ for o in gc.garbage if not kinds or issubclass(type(o), kinds)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()  # out of gc.garbage, they are cycles still
