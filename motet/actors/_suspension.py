"""Running a coroutine and hearing of its first suspension, for work that is only needed if
the coroutine waits.

The solo worker's lease keeper is the case: a handler that returns without ever giving the
scheduler back cannot outlive its lease while the keeper sleeps (nothing else runs meanwhile,
the keeper included), so the keeper's timer is armed only when the handler first suspends.
A cron tick's handler that logs a line and returns then costs no timer at all: no deadline
registered and removed per tick, which was a tenth of the tick's instructions.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


@types.coroutine
def on_first_suspension(
    coro: Coroutine[Any, Any, T], suspending: Callable[[], object]
) -> Generator[Any, Any, T]:
    """Await `coro`, calling `suspending()` once, just before its first suspension reaches
    the scheduler; a coroutine that finishes (returns or raises) without suspending never
    calls it. Whatever the scheduler sends or throws in is passed on to `coro` unchanged, so
    cancellation and `KeyboardInterrupt` reach it as they would unwrapped."""
    try:
        signal = coro.send(None)
    except StopIteration as done:
        return done.value
    try:
        suspending()
    except BaseException:
        coro.close()
        raise
    while True:
        try:
            sent = yield signal
        except BaseException as exc:  # thrown in: handed to the coroutine, which decides
            try:
                signal = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                signal = coro.send(sent)
            except StopIteration as done:
                return done.value
