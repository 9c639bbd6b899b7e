"""`GET /_streams/{name}/{group}`: a stream group, live, over Server-Sent Events or WebSocket.

A client first gets the group's current items (a `sync` message), then every change as it
happens (`create`, `update`, `delete`, and `event` for ephemeral `send`s). Each message
carries the group's event id (SSE `id:`; `eventId` in the JSON), so a client that reconnects
with `Last-Event-ID` (SSE does this by itself; a WebSocket client passes `?lastEventId=`)
gets only what it missed, or the current items again when the stored log no longer reaches
back that far. Messages are JSON in Motia's shape:

    {"streamName": "videoProgress", "groupId": "v1", "id": "job", "eventId": 7,
     "event": {"type": "update", "data": {"id": "job", "progress": 40}}}

Ordering: the session subscribes to the hub before it reads the items or the log, so no
change falls between the two; changes it already sent (event id not above the last sent)
are skipped, and a hole in the ids (a follower that fell behind) is filled from the log.

Who may subscribe: the stream's `public` flag or its `can_access` hook; otherwise 403. A
client too slow to take its changes (its buffer in the hub overflows) is dropped with a
final `close` message (SSE) or close code 1013 (WebSocket), never slowing the publishers;
it may reconnect and resume. When the server stops, sessions end the same way, and so does
a session whose backend fails (with an error id that matches the log line).

Cost: a change is encoded once for all its subscribers, and the changes already waiting for
a subscriber go out in one SSE write; what remains per subscriber is one ASGI send.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from .._envelope import JSON, new_id
from ..backends._stream_records import StreamChange, is_valid_key
from ..steps._http import HttpInvoker
from ..streams import StreamConfig, StreamRequest, StreamService
from ._exchange import header_map
from ._options import GatewayOptions
from ._problem import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PROBLEM_CONTENT_TYPE,
    ProblemKind,
    http_problem_kind,
    problem_body,
)

Send = Callable[[dict[str, Any]], Awaitable[None]]

STREAMS_PREFIX = "/_streams/"
FORBIDDEN = http_problem_kind(403, "Forbidden")
HEARTBEAT_SECONDS = 15.0  # an SSE comment line this often keeps proxies from closing idle streams
RETRY_MS = 1000  # how soon an EventSource reconnects after the stream ends
SLOW_CLOSE_CODE = 1013  # WebSocket "try again later": dropped for being slow, or stopping
FINAL_SEND_SECONDS = 1.0  # at most this long to tell a client why its stream ends
ENCODED_CACHE = 256  # recent changes kept encoded
BURST = 64  # changes already waiting that one SSE write may carry


class StreamEndpoint:
    """Serves `/_streams/...` (HTTP and WebSocket scopes) for one runtime's streams."""

    def __init__(
        self, service: StreamService, invoker: HttpInvoker, options: GatewayOptions
    ) -> None:
        self.service = service
        self.invoker = invoker
        self.options = options
        self.heartbeat = HEARTBEAT_SECONDS
        # A change goes to every subscriber of its group in the same words: encoded once.
        self._encoded: OrderedDict[tuple[str, str, int], str] = OrderedDict()

    def encoded(self, change: StreamChange) -> str:
        key = (change.stream, change.group, change.seq)
        text = self._encoded.get(key)
        if text is None:
            text = json.dumps(
                {
                    "streamName": change.stream,
                    "groupId": change.group,
                    "id": change.id,
                    "eventId": change.seq,
                    "event": {"type": change.kind, "data": change.data},
                },
                separators=(",", ":"),
            )
            self._encoded[key] = text
            if len(self._encoded) > ENCODED_CACHE:
                self._encoded.popitem(last=False)
        return text

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["type"] in ("http", "websocket") and str(
            cast(Mapping[str, Any], scope)["path"]
        ).startswith(STREAMS_PREFIX)

    async def __call__(
        self, asgi_scope: Scope, receive: ASGIReceiveCallable, asgi_send: ASGISendCallable
    ) -> None:
        # HTTP and WebSocket scopes and events alike, as plain dicts (hypercorn's TypedDicts
        # are one per scope type).
        scope = cast(dict[str, Any], asgi_scope)
        send = cast(Send, asgi_send)
        headers = header_map(scope["headers"])
        trace_id = new_id()
        websocket = scope["type"] == "websocket"
        reply = _Reply(scope, send, trace_id, self.options.trace_header, websocket)
        raw = scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
        parts = path[len(STREAMS_PREFIX) :].split("/")
        if len(parts) != 2 or not parts[0]:
            return await reply.problem(
                NOT_FOUND, "expected /_streams/{name}/{group}", receive=receive
            )
        name, group = unquote(parts[0]), unquote(parts[1])
        config = self.service.config(name)
        if config is None:
            known = ", ".join(sorted(self.service.configs)) or "none"
            return await reply.problem(
                NOT_FOUND, f"no stream named {name!r}; streams: {known}", receive=receive
            )
        if not is_valid_key(group):
            return await reply.problem(
                BAD_REQUEST,
                f"group {group!r} is not a valid group id (1-200 printable characters "
                "without '/' or whitespace)",
                receive=receive,
            )
        if not websocket and scope.get("method") not in ("GET", "HEAD"):
            return await reply.problem(
                METHOD_NOT_ALLOWED,
                f"{scope.get('method')} is not allowed on {scope['path']}; allowed: GET",
                receive=receive,
                headers={"allow": "GET"},
            )
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        request = StreamRequest(
            stream=name,
            group=group,
            path=scope["path"],
            headers=headers,
            query=query,
            transport="websocket" if websocket else "sse",
        )
        if not await self._allowed(config, request, trace_id):
            return await reply.problem(
                FORBIDDEN,
                f"subscribing to stream {name!r} group {group!r} is not allowed",
                receive=receive,
            )
        last = _last_event_id(headers.get("last-event-id", query.get("lastEventId")))
        session = _Session(self, config, group, reply, last)
        if websocket:
            await session.run_websocket(receive)
        else:
            await session.run_sse(receive)

    async def _allowed(self, config: StreamConfig, request: StreamRequest, trace_id: str) -> bool:
        try:
            return await config.allows(request)
        except Exception as exc:
            self.invoker.log_error(
                f"the can_access hook of stream {config.name!r} failed; access denied: "
                f"{type(exc).__name__}: {exc}",
                trace_id=trace_id,
                step=None,
                exc_info=exc,
            )
            return False


def _last_event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None  # not ours (another server's id): start over with the current items
    return value if value >= 0 else None


class _Reply:
    """Writing to the client, over SSE or WebSocket."""

    def __init__(
        self, scope: dict[str, Any], send: Send, trace_id: str, trace_header: str, ws: bool
    ) -> None:
        self.scope = scope
        self.send = send
        self.trace_id = trace_id
        self.trace_header = trace_header
        self.websocket = ws
        self.held: list[bytes] | None = None

    async def problem(
        self,
        kind: ProblemKind,
        detail: str,
        *,
        receive: ASGIReceiveCallable,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = problem_body(kind, detail, instance=self.scope["path"], trace_id=self.trace_id)
        raw = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (self.trace_header.encode("latin-1"), self.trace_id.encode()),
            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
        ]
        if not self.websocket:
            await self.send({"type": "http.response.start", "status": kind.status, "headers": raw})
            await self.send({"type": "http.response.body", "body": body, "more_body": False})
            return
        message = await receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self.send(
                {"type": "websocket.http.response.start", "status": kind.status, "headers": raw}
            )
            await self.send({"type": "websocket.http.response.body", "body": body})
        else:
            await self.send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})

    async def sse_start(self) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
                    (self.trace_header.encode("latin-1"), self.trace_id.encode()),
                ],
            }
        )

    async def chunk(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
            return
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    def hold(self) -> None:
        """Collect SSE chunks until `flush` (one write for a burst of changes)."""
        self.held = []

    async def flush(self) -> None:
        held, self.held = self.held, None
        if held:
            await self.chunk(b"".join(held))

    async def sse_end(self) -> None:
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def message(self, kind: str, seq: int, payload: dict[str, JSON] | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        if self.websocket:
            await self.send({"type": "websocket.send", "text": text})
        else:
            await self.chunk(f"id: {seq}\nevent: {kind}\ndata: {text}\n\n".encode())


class _Session:
    def __init__(
        self,
        endpoint: StreamEndpoint,
        config: StreamConfig,
        group: str,
        reply: _Reply,
        last: int | None,
    ) -> None:
        self.endpoint = endpoint
        self.service = endpoint.service
        self.config = config
        self.name = config.name
        self.group = group
        self.reply = reply
        self.last = last  # the last event id the client has

    # -- transports ---------------------------------------------------------------------

    async def run_sse(self, receive: ASGIReceiveCallable) -> None:
        with self.service.hub.subscribe(self.name, self.group) as subscriber:
            await self.reply.sse_start()
            if self.reply.scope.get("method") == "HEAD":
                return await self.reply.sse_end()
            await self.reply.chunk(f"retry: {RETRY_MS}\n\n".encode())
            reason: str | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope, False)
                reason = await self._serve(subscriber)
                nursery.cancel_scope.cancel()
            if reason is not None:
                with trio.move_on_after(FINAL_SEND_SECONDS):
                    await self.reply.chunk(
                        b"event: close\ndata: " + json.dumps({"reason": reason}).encode() + b"\n\n"
                    )
                    await self.reply.sse_end()

    async def run_websocket(self, receive: ASGIReceiveCallable) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        with self.service.hub.subscribe(self.name, self.group) as subscriber:
            await self.reply.send({"type": "websocket.accept"})
            reason: str | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_until_disconnect, receive, nursery.cancel_scope, True)
                reason = await self._serve(subscriber)
                nursery.cancel_scope.cancel()
            if reason is not None:
                with trio.move_on_after(FINAL_SEND_SECONDS):
                    await self.reply.send(
                        {"type": "websocket.close", "code": SLOW_CLOSE_CODE, "reason": reason[:120]}
                    )

    # -- the session --------------------------------------------------------------------

    async def _serve(self, subscriber: Any) -> str | None:
        """`_pump`, with a failure (the backend unreachable) logged and told to the client
        as the reason its stream ends, never a connection cut without a word."""
        try:
            return await self._pump(subscriber)
        except Exception as exc:
            error_id = new_id()
            self.endpoint.invoker.log_error(
                f"stream {self.name!r} group {self.group!r} failed: {type(exc).__name__}: {exc}",
                trace_id=self.reply.trace_id,
                step=None,
                exc_info=exc,
                error_id=error_id,
            )
            self.reply.held = None
            return f"the server could not serve the stream (error id {error_id}); reconnect"

    async def _pump(self, subscriber: Any) -> str | None:
        """Catch up, then forward live changes until the subscription ends; returns why it
        ended (None when the client left)."""
        await self._catch_up()
        changes = subscriber.changes
        while True:
            with trio.move_on_after(self.endpoint.heartbeat) as idle:
                try:
                    batch: list[StreamChange] = [await changes.receive()]
                except trio.EndOfChannel:
                    return subscriber.closed_reason or "the stream ended"
            if idle.cancelled_caught:
                if not self.reply.websocket:
                    await self.reply.chunk(b": keep-alive\n\n")
                continue
            ended = _take_waiting(changes, batch)
            # A burst goes out as one SSE write (WebSocket: one frame per change).
            self.reply.hold()
            try:
                for change in batch:
                    await self._forward(change)
            finally:
                await self.reply.flush()
            if ended:
                return subscriber.closed_reason or "the stream ended"

    async def _forward(self, change: StreamChange) -> None:
        assert self.last is not None
        if change.seq <= self.last:
            return  # already sent with the items or the log
        if change.seq > self.last + 1:
            await self._catch_up()  # a hole: fill it from the log
            if change.seq <= self.last:
                return
        await self._send_change(change)

    async def _catch_up(self) -> None:
        storage = self.service.storage()
        if self.last is not None:
            missed = await storage.stream_since(self.name, self.group, self.last)
            if missed is not None:
                for change in missed:
                    await self._send_change(change)
                return
        snapshot = await storage.stream_items(self.name, self.group)
        await self.reply.message(
            "sync",
            snapshot.seq,
            {
                "streamName": self.name,
                "groupId": self.group,
                "eventId": snapshot.seq,
                "event": {"type": "sync", "data": [data for _, data in snapshot.items]},
            },
        )
        self.last = snapshot.seq

    async def _send_change(self, change: StreamChange) -> None:
        await self.reply.message(change.kind, change.seq, self.endpoint.encoded(change))
        self.last = change.seq


def _take_waiting(
    changes: trio.MemoryReceiveChannel[StreamChange], batch: list[StreamChange]
) -> bool:
    """Add the changes already waiting (up to `BURST`) to `batch`; True when the
    subscription ended behind them."""
    while len(batch) < BURST:
        try:
            batch.append(changes.receive_nowait())
        except trio.WouldBlock:
            return False
        except trio.EndOfChannel:
            return True
    return False


async def _until_disconnect(
    receive: ASGIReceiveCallable, scope: trio.CancelScope, websocket: bool
) -> None:
    """Cancel the session when the client goes away (incoming WebSocket messages are
    ignored: the subscription is the URL)."""
    gone = "websocket.disconnect" if websocket else "http.disconnect"
    while True:
        message = await receive()
        if message["type"] == gone:
            scope.cancel()
            return


def stream_endpoint(
    service: StreamService | None, invoker: HttpInvoker, options: GatewayOptions
) -> StreamEndpoint | None:
    """The endpoint for a runtime's streams; None when it declares none."""
    if service is None or not service.configs:
        return None
    return StreamEndpoint(service, invoker, options)
