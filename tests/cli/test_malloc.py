"""`motet start` caps glibc's malloc arenas before its threads start, unless the user chose,
hands start-up's freed memory back once started, and drops attrs' generated source text."""

from __future__ import annotations

import os
import sys

from motet._malloc import (
    GENERATED_SOURCE,
    forget_generated_sources,
    limit_malloc_arenas,
    release_free_memory,
)


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


def test_attrs_generated_source_is_forgotten_and_classes_still_work() -> None:
    """The source text attrs registers for generated methods is dropped; classes made
    before and after keep working, and a traceback through a generated method still
    names its frame (without the source line)."""
    import linecache
    import traceback

    import attrs

    @attrs.frozen
    class Before:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    assert any(name.startswith(GENERATED_SOURCE) for name in linecache.cache)
    assert forget_generated_sources() > 0
    assert not any(name.startswith(GENERATED_SOURCE) for name in linecache.cache)
    assert forget_generated_sources() == 0
    assert Before(1) == Before(1) and repr(Before(2)) == "Before(x=2)"

    @attrs.frozen
    class After:
        y: str

    assert After("a").y == "a"
    try:
        Before("not an int")  # type: ignore[arg-type]
    except TypeError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
    else:  # pragma: no cover - the validator must refuse
        raise AssertionError("the validator accepted a str")
    assert any(frame.filename.startswith(GENERATED_SOURCE) for frame in frames)
