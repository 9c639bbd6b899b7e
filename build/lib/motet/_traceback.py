"""Tracebacks as users want to read them: their own frames in full, the runtime's folded.

A handler failure travels from the handler through motet's dispatcher, trio's scheduler and
sometimes a worker thread; printed raw, the user's two frames hide among twenty of ours.
`format_failure` keeps every frame outside motet, trio and the standard library's threading
and asyncio machinery, folds each run of those into one line, follows `raise ... from` and
implicit chaining, and caps the text so a dead letter or a span never stores megabytes.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator

import outcome
import trio

MAX_TRACEBACK = 16_384  # characters kept; the innermost frames (the end) are what matter
_HEAD = 1_024  # characters kept from the start when cutting

_LIB = os.path.dirname(os.__file__)
_FOLDED_DIRS = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (
        __file__,  # motet itself
        trio.__file__,
        outcome.__file__,
        os.path.join(_LIB, "asyncio", "__init__.py"),
        os.path.join(_LIB, "concurrent", "futures", "__init__.py"),
    )
)
_FOLDED_FILES = frozenset(os.path.join(_LIB, name) for name in ("threading.py", "contextlib.py"))


def _folded(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path in _FOLDED_FILES or path.startswith(_FOLDED_DIRS)


def format_failure(exc: BaseException, *, limit: int = MAX_TRACEBACK) -> str:
    """The traceback of `exc` and its causes, runtime frames folded, at most `limit` chars."""
    text = "".join(_format(traceback.TracebackException.from_exception(exc), set()))
    return cap(text.rstrip("\n"), limit)


def cap(text: str, limit: int = MAX_TRACEBACK) -> str:
    """`text` cut to `limit` characters: its first lines and its end (the innermost frames
    and the error itself), with a line saying how much was cut."""
    if len(text) <= limit:
        return text
    head = text[: min(_HEAD, limit // 4)]
    cut_at = head.rfind("\n")
    head = head[: cut_at + 1] if cut_at > 0 else head
    marker = "  [... {} characters cut ...]\n"
    tail_len = limit - len(head) - len(marker.format(len(text)))
    tail = text[len(text) - max(tail_len, 0) :]
    newline = tail.find("\n")
    tail = tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail
    return head + marker.format(len(text) - len(head) - len(tail)) + tail


def _format(te: traceback.TracebackException, seen: set[int]) -> Iterator[str]:
    seen.add(id(te))
    if te.__cause__ is not None and id(te.__cause__) not in seen:
        yield from _format(te.__cause__, seen)
        yield "\nThe above exception was the direct cause of the following exception:\n\n"
    elif (
        te.__context__ is not None
        and not te.__suppress_context__
        and id(te.__context__) not in seen
    ):
        yield from _format(te.__context__, seen)
        yield "\nDuring handling of the above exception, another exception occurred:\n\n"
    if te.stack:
        yield "Traceback (most recent call last):\n"
        yield from _frames(te.stack)
    yield from te.format_exception_only()
    for index, inner in enumerate(te.exceptions or (), start=1):
        yield f"  [sub-exception {index}]\n"
        for line in _format(inner, seen):
            yield "    " + line.replace("\n", "\n    ").rstrip(" ") if line.strip() else line


def _frames(stack: traceback.StackSummary) -> Iterator[str]:
    folded = 0
    for frame in stack:
        if _folded(frame.filename):
            folded += 1
            continue
        if folded:
            yield _fold_line(folded)
            folded = 0
        yield from traceback.StackSummary.from_list([frame]).format()
    if folded:
        yield _fold_line(folded)


def _fold_line(count: int) -> str:
    return f"  [{count} runtime frame{'s' if count != 1 else ''} (motet, trio) folded]\n"
