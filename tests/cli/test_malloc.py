"""`motet start` caps glibc's malloc arenas before its threads start, unless the user chose,
and hands start-up's freed memory back once started."""

from __future__ import annotations

import os
import sys

from motet._malloc import limit_malloc_arenas, release_free_memory


def test_a_malloc_arena_max_the_user_set_is_left_alone() -> None:
    assert limit_malloc_arenas({"MALLOC_ARENA_MAX": "8"}) is False


def test_the_cap_is_set_on_glibc_and_nowhere_else() -> None:
    assert limit_malloc_arenas({}) is _glibc()


def test_free_memory_is_released_on_glibc_and_nowhere_else() -> None:
    assert release_free_memory() is _glibc()


def _glibc() -> bool:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        libc = None
    return sys.platform.startswith("linux") and libc is not None
