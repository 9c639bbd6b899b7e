"""Shutdown never cuts a request: what is read is answered (with `Connection: close`), what
arrives on a new connection while draining is refused with 503 before any handler runs,
and a response the client does not take is bounded by the send timeout."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import trio

from motet.gateway import GatewayOptions, build_app, serve
from motet.steps._model import HttpTrigger, Step

from ._raw import GENEROUS, connect, read_response, read_until_eof, request_bytes
from .conftest import DirectInvoker


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out[name.strip().lower().decode()] = value.strip().decode()
    return out


def _gated_app(
    invoker: DirectInvoker, converter: Any, entered: trio.Event, gate: trio.Event
) -> Any:
    async def wait(request: Any, ctx: Any) -> Any:
        entered.set()
        await gate.wait()
        return {"done": True}

    async def quick(request: Any, ctx: Any) -> Any:
        return {"n": request.path_params["n"]}

    steps = [
        Step(name="wait", handler=wait, triggers=(HttpTrigger("GET", "/wait"),)),
        Step(name="quick", handler=quick, triggers=(HttpTrigger("GET", "/quick/:n"),)),
    ]
    return build_app(steps, invoker, converter=converter)


async def test_new_connections_while_draining_get_503_and_in_flight_requests_finish(
    invoker: DirectInvoker, converter: Any
) -> None:
    entered, gate, stop = trio.Event(), trio.Event(), trio.Event()
    app = _gated_app(invoker, converter, entered, gate)
    options = GatewayOptions(port=0, graceful_timeout=60.0)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            busy = await connect(urls[0])
            await busy.send_all(request_bytes("/wait"))
            await entered.wait()
            stop.set()  # draining: /wait is still running
            await trio.testing.wait_all_tasks_blocked()

            late = await connect(urls[0])
            await late.send_all(request_bytes("/quick/1"))
            refused = await read_until_eof(late)
            await late.aclose()
            head, _, body = refused.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503"), refused
            headers = _headers(head)
            assert headers["connection"] == "close" and headers["retry-after"] == "1"
            doc = json.loads(body)
            assert doc["type"] == "urn:motet:problem:shutting-down"
            assert doc["trace_id"] == headers["x-trace-id"]

            gate.set()
            answer = await read_until_eof(busy)
            await busy.aclose()
    assert answer.startswith(b"HTTP/1.1 200")
    assert _headers(answer.partition(b"\r\n\r\n")[0])["connection"] == "close"
    assert invoker.calls == 1  # the refused request never reached a handler


async def test_a_request_arriving_on_an_idle_connection_as_draining_begins_is_answered(
    invoker: DirectInvoker, converter: Any
) -> None:
    """hypercorn closed idle keep-alive connections when draining began even if a request
    had just arrived on one: its handler ran and its answer was lost."""
    entered, gate, stop = trio.Event(), trio.Event(), trio.Event()
    gate.set()
    app = _gated_app(invoker, converter, entered, gate)
    options = GatewayOptions(port=0, graceful_timeout=60.0, keep_alive_timeout=60.0)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            stream = await connect(urls[0])
            await stream.send_all(request_bytes("/quick/1"))
            await read_response(stream)
            await trio.testing.wait_all_tasks_blocked()  # the connection is idle
            await stream.send_all(request_bytes("/quick/2"))
            stop.set()  # in the same instant
            second = await read_until_eof(stream)
            await stream.aclose()
    assert second.startswith(b"HTTP/1.1 200"), (second, invoker.calls)
    assert _headers(second.partition(b"\r\n\r\n")[0])["connection"] == "close"
    assert invoker.calls == 2


async def test_an_idle_keep_alive_connection_is_answered_with_close_while_others_drain(
    invoker: DirectInvoker, converter: Any
) -> None:
    """While requests are still in flight, an idle keep-alive connection stays usable: its
    next request is answered with `Connection: close` (hypercorn closed it at once, so a
    client sending on it met a closed socket)."""
    entered, gate, stop = trio.Event(), trio.Event(), trio.Event()
    app = _gated_app(invoker, converter, entered, gate)
    options = GatewayOptions(port=0, graceful_timeout=60.0, keep_alive_timeout=60.0)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            idle = await connect(urls[0])
            await idle.send_all(request_bytes("/quick/1"))
            await read_response(idle)
            busy = await connect(urls[0])
            await busy.send_all(request_bytes("/wait"))
            await entered.wait()
            stop.set()
            await trio.testing.wait_all_tasks_blocked()  # draining; /wait still running

            await idle.send_all(request_bytes("/quick/2"))
            second = await read_until_eof(idle)
            await idle.aclose()
            gate.set()
            await read_until_eof(busy)
            await busy.aclose()
    assert second.startswith(b"HTTP/1.1 200"), second
    assert _headers(second.partition(b"\r\n\r\n")[0])["connection"] == "close"
    assert invoker.calls == 3


async def test_a_handler_cut_by_the_graceful_deadline_is_answered_503(
    invoker: DirectInvoker, converter: Any
) -> None:
    """A handler still running when `graceful_timeout` ends the drain is cancelled; its client
    is told so (503, with an error id that the log repeats) instead of meeting a closed
    socket after the handler may have done part of its work."""
    entered, gate, stop = trio.Event(), trio.Event(), trio.Event()  # the gate never opens
    app = _gated_app(invoker, converter, entered, gate)
    options = GatewayOptions(port=0, graceful_timeout=0.2)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            stream = await connect(urls[0])
            await stream.send_all(request_bytes("/wait"))
            await entered.wait()
            stop.set()
            answer = await read_until_eof(stream)
            await stream.aclose()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), answer
    doc = json.loads(body)
    assert doc["type"] == "urn:motet:problem:handler-cut"
    [line] = [r for r in invoker.records if r.level == "error"]
    assert line.fields["error_id"] == doc["error_id"] and "cut" in line.message


async def test_a_client_that_does_not_read_its_response_is_disconnected(
    invoker: DirectInvoker, converter: Any
) -> None:
    size = 16 * 1024 * 1024

    async def big(request: Any, ctx: Any) -> Any:
        return {
            "status": 200,
            "body": b"x" * size,
            "headers": {"content-type": "application/octet-stream"},
        }

    app = build_app(
        [Step(name="big", handler=big, triggers=(HttpTrigger("GET", "/big"),))],
        invoker,
        converter=converter,
    )
    timed_out = trio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "did not take a response" in record.getMessage():
                timed_out.set()

    log = logging.getLogger("motet.tests.send-timeout")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(Watch())
    stop = trio.Event()
    options = GatewayOptions(port=0, send_timeout=0.3, error_log=log)
    with trio.fail_after(GENEROUS):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(serve, app, options, shutdown_trigger=stop.wait)
            )
            stream = await connect(urls[0])
            await stream.send_all(request_bytes("/big"))
            await timed_out.wait()  # the server gave up on this reader
            received = 0
            try:
                while chunk := await stream.receive_some(1 << 20):
                    received += len(chunk)
            except trio.BrokenResourceError:  # reset: the unsent rest was dropped
                pass
            await stream.aclose()
            stop.set()
    assert received < size
