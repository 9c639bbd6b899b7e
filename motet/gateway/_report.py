"""What the gateway made of a request, and reporting each answered request to the runtime's
observers (`on_http`: route, method, status, duration, trace id).

The gateway reports from the coroutine that answers, so no ASGI layer has to wrap every
request to time it and catch its status: such a layer is one more frame resumed at every
checkpoint of every request. The status is read afterwards from hypercorn's stream, which
keeps the response start it was sent; under any other server `send` is wrapped to see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import attrs
import trio
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.typing import ASGISendCallable, Scope

from .._observer import HttpExchange

OnHttp = Callable[[HttpExchange], None]

# The scope key under which the gateway leaves what it matched, for an app wrapping it (the
# console's operator layer) to read after the call instead of matching again.
MATCHED = "motet.matched"


@attrs.frozen
class Matched:
    """What the gateway made of a request: the step route (its path as written) and step,
    None when no step route took it (an unknown path, a method none of its steps takes),
    and the trace id it answered with."""

    route: str | None
    step: str | None
    trace_id: str


def matched(scope: Scope) -> Matched | None:
    """What the gateway left in `scope` (`MATCHED`), None when it answered nothing."""
    found = cast(Mapping[str, Any], scope).get(MATCHED)
    return found if isinstance(found, Matched) else None


def leave(scope: Scope, found: Matched) -> None:
    cast(dict[str, Any], scope)[MATCHED] = found


def status_reader(send: ASGISendCallable) -> tuple[ASGISendCallable, Callable[[], int]]:
    """The `send` to answer with and a function giving the status it sent (0: none)."""
    stream = getattr(send, "__self__", None)
    if isinstance(stream, HTTPStream):

        def kept() -> int:
            response = getattr(stream, "response", None)
            return response["status"] if response is not None else 0

        return send, kept
    seen = [0]

    async def observed(message: Any) -> None:
        if message["type"] == "http.response.start":
            seen[0] = message["status"]
        await send(message)

    return observed, lambda: seen[0]


def report(on_http: OnHttp, scope: Scope, status: int, started: float) -> None:
    """Tell `on_http` about an answered request (a client that left before any answer is
    nobody's request)."""
    if not status:
        return
    found = scope.get(MATCHED)  # matched(scope), inline, without typing.cast's call
    if not isinstance(found, Matched):
        found = None
    on_http(
        HttpExchange(  # method, route, path, status, trace_id, step, duration
            scope["method"],  # type: ignore[typeddict-item]
            found.route if found else None,
            scope["path"],  # type: ignore[typeddict-item]
            status,
            found.trace_id if found else None,
            found.step if found else None,
            trio.current_time() - started,
        )
    )


async def answer_reported(
    answer: Callable[[ASGISendCallable], Awaitable[None]],
    scope: Scope,
    send: ASGISendCallable,
    on_http: OnHttp,
) -> None:
    """`answer(send)`, timed and reported (the gateway's answers other than a step's)."""
    observed, status = status_reader(send)
    started = trio.current_time()
    try:
        await answer(observed)
    finally:
        report(on_http, scope, status(), started)
