"""Fewer malloc arenas for a served process, and freed memory handed back (glibc only).

glibc gives each thread that allocates an arena of its own, up to eight per core, and a
freed block goes back to its arena, not to the system: the backend's writer threads,
telemetry's writer and trio's worker threads each keep a high-water mark of their own.
On `motet start` serving the example app, two arenas leave about 1.5 MiB less resident
after 20k requests (the same cap as the MALLOC_ARENA_MAX=2 setting many Python servers
run with). A MALLOC_ARENA_MAX the user set is left alone, and so is any other C library.

Start-up (loading steps, building schemas and converters, opening the backend) frees much
of what it allocated, and so does a SQLite connection that drops its page cache once quiet,
but glibc returns only the top of its heap to the system on its own: `release_free_memory`
asks it to return every free page (`malloc_trim`): about 1 MiB of an idle `motet start` on
the example app, and what the SQLite writer frees when it goes quiet.

attrs keeps the source text of every method it generates in `linecache`, for as long as
the process lives, so that a traceback through a generated `__init__` can show its line:
about 0.6 MiB for the classes of trio, cattrs, motet and the steps. `forget_generated_sources`
drops that text once the project is loaded, before the runtime allocates what it keeps, so
the runtime reuses the space (about 0.4 MiB less resident at idle on the example app). A
traceback through a generated method then shows its frame without the source line, as for
the methods dataclasses generate.
"""

from __future__ import annotations

import functools
import linecache
import os
import sys
from typing import Any

GENERATED_SOURCE = "<attrs generated "  # how attrs names the source it registers
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


@functools.cache
def _glibc() -> Any | None:
    """The C library as a ctypes handle when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if os.confstr("CS_GNU_LIBC_VERSION") is None:  # musl, or another C library
            return None
    except (ValueError, OSError):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def limit_malloc_arenas(environ: dict[str, str] | None = None) -> bool:
    """Cap glibc's arenas at `ARENAS` for this process; True when the cap was set.
    Called before the runtime starts its threads (an arena already made stays)."""
    env = os.environ if environ is None else environ
    if "MALLOC_ARENA_MAX" in env:
        return False
    libc = _glibc()
    try:
        return libc is not None and bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    except AttributeError:
        return False


def release_free_memory() -> bool:
    """Return the free pages of glibc's heaps to the system; True on glibc (whether or not
    there was any), False elsewhere. Called once the runtime has started and when the SQLite
    writer goes quiet: it takes a few milliseconds and holds the allocator meanwhile, so not
    on a path requests take."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        libc.malloc_trim(0)
    except AttributeError:
        return False
    return True


def forget_generated_sources() -> int:
    """Drop the source text attrs registered in `linecache` for the methods it generated;
    returns how many entries were dropped. A class made later registers its own again."""
    generated = [name for name in linecache.cache if name.startswith(GENERATED_SOURCE)]
    for name in generated:
        linecache.cache.pop(name, None)
    return len(generated)
