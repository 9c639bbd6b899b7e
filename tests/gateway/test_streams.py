"""`/_streams/{name}/{group}` on a real socket: Server-Sent Events and WebSocket, current items
then live changes, resume with Last-Event-ID, access rules, slow and vanishing clients.

These run on real time: the gateway serves real sockets (see tests/gateway/test_serving.py);
every wait is bounded by `fail_after`, none sleeps to wait for work.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio

from motet._runtime import Runtime, RuntimeOptions, running
from motet.backends import MemoryBackend
from motet.console._part import serving
from motet.gateway import GatewayOptions
from motet.streams import StreamConfig, StreamRequest

from ._sse import SseClient, open_sse
from ._ws import Rejected, WebSocket

TOKEN = "s3cret"


def token_ok(request: StreamRequest, group: str) -> bool:
    return request.headers.get("authorization") == f"Bearer {TOKEN}" or (
        request.query.get("token") == TOKEN
    )


async def only_own_group(request: StreamRequest, group: str) -> bool:
    await trio.lowlevel.checkpoint()
    return request.headers.get("x-user") == group


def crashing(request: StreamRequest, group: str) -> bool:
    raise RuntimeError("hook bug")


STREAMS = [
    StreamConfig("progress", public=True),
    StreamConfig("private"),
    StreamConfig("tokened", can_access=token_ok),
    StreamConfig("mine", can_access=only_own_group),
    StreamConfig("broken", can_access=crashing),
]


@asynccontextmanager
async def served(
    backend: Any = None, streams: list[StreamConfig] = STREAMS, buffer: int = 256, **options: Any
) -> AsyncIterator[tuple[Runtime, str]]:
    runtime = Runtime(
        [],
        backend=backend if backend is not None else MemoryBackend(),
        parts=serving(GatewayOptions(port=0, **options), telemetry=False),
        options=RuntimeOptions(log_sink=False, shutdown_timeout=1.0, stream_buffer=buffer),
        streams=streams,
    )
    async with running(runtime):
        yield runtime, runtime.gateway_urls[0]


@asynccontextmanager
async def sse(url: str, path: str, **headers: str) -> AsyncIterator[SseClient]:
    async with open_sse(url, path, **headers) as client:
        assert client.status == 200, client.body
        assert client.headers["content-type"].startswith("text/event-stream")
        yield client


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


async def test_sse_sends_current_items_then_live_changes() -> None:
    async with served() as (runtime, url):
        assert runtime.streams is not None
        progress = runtime.streams.api.progress
        await progress.set("v1", "b", {"pct": 1})
        await progress.set("v1", "a", {"pct": 2})
        await progress.set("v2", "other", {"pct": 9})
        with trio.fail_after(10):
            async with sse(url, "/_streams/progress/v1") as events:
                sync = await events.next()
                assert sync["event"] == "sync" and sync["id"] == "2"
                assert sync["data"] == {
                    "streamName": "progress",
                    "groupId": "v1",
                    "eventId": 2,
                    "event": {
                        "type": "sync",
                        "data": [{"pct": 2, "id": "a"}, {"pct": 1, "id": "b"}],
                    },
                }
                await progress.set("v1", "a", {"pct": 50})
                await progress.set("v2", "other", {"pct": 10})  # another group: not sent
                await progress.delete("v1", "b")
                await progress.send({"groupId": "v1"}, {"type": "note", "data": {"x": 1}})
                got = [await events.next() for _ in range(3)]
        assert [(e["id"], e["event"]) for e in got] == [
            ("3", "update"),
            ("4", "delete"),
            ("5", "event"),
        ]
        assert got[0]["data"]["event"]["data"] == {"pct": 50, "id": "a"}
        assert got[0]["data"]["id"] == "a"
        assert got[2]["data"]["event"]["data"] == {"type": "note", "data": {"x": 1}}


async def test_sse_resumes_after_last_event_id_without_duplicates() -> None:
    async with served() as (runtime, url):
        assert runtime.streams is not None
        progress = runtime.streams.api.progress
        for pct in (10, 20, 30, 40):
            await progress.set("v1", "job", {"pct": pct})
        with trio.fail_after(10):
            async with sse(url, "/_streams/progress/v1", last_event_id="2") as events:
                first, second = await events.next(), await events.next()
                await progress.set("v1", "job", {"pct": 50})
                third = await events.next()
        assert [(e["id"], e["event"]) for e in (first, second, third)] == [
            ("3", "update"),
            ("4", "update"),
            ("5", "update"),
        ]
        assert third["data"]["event"]["data"]["pct"] == 50


async def test_resume_falls_back_to_the_current_items_when_the_id_is_unknown() -> None:
    async with served() as (runtime, url):
        assert runtime.streams is not None
        await runtime.streams.api.progress.set("v1", "job", {"pct": 10})
        with trio.fail_after(10):
            for stale in ("99", "not-a-number"):
                async with sse(url, "/_streams/progress/v1", last_event_id=stale) as ev:
                    sync = await ev.next()
                assert sync["event"] == "sync"
                assert sync["data"]["event"]["data"] == [{"pct": 10, "id": "job"}]


async def test_a_private_stream_is_refused_with_403() -> None:
    async with served() as (_, url), httpx.AsyncClient(base_url=url) as client:
        for path in ("/_streams/private/g", "/_streams/tokened/g", "/_streams/broken/g"):
            response = await client.get(path)
            assert response.status_code == 403, path
            assert response.headers["content-type"] == "application/problem+json"
            doc = response.json()
            assert doc["status"] == 403 and "not allowed" in doc["detail"]
            assert doc["trace_id"] == response.headers["x-trace-id"]


async def test_the_access_hook_sees_headers_query_and_group() -> None:
    async with served() as (_, url), httpx.AsyncClient(base_url=url) as client:
        assert (
            await client.get("/_streams/mine/ann", headers={"x-user": "bob"})
        ).status_code == 403
        with trio.fail_after(10):
            async with sse(url, "/_streams/mine/ann", x_user="ann") as events:
                assert (await events.next())["event"] == "sync"
            async with sse(url, "/_streams/tokened/g", authorization=f"Bearer {TOKEN}") as ev:
                assert (await ev.next())["event"] == "sync"
            async with sse(url, f"/_streams/tokened/g?token={TOKEN}") as ev:
                assert (await ev.next())["event"] == "sync"


async def test_unknown_streams_bad_paths_and_methods() -> None:
    async with served() as (_, url), httpx.AsyncClient(base_url=url) as client:
        unknown = await client.get("/_streams/nope/g")
        assert unknown.status_code == 404 and "progress" in unknown.json()["detail"]
        assert (await client.get("/_streams/progress")).status_code == 404
        assert (await client.get("/_streams/progress/a/b")).status_code == 404
        bad = await client.get("/_streams/progress/a%2Fb")
        assert bad.status_code == 400 and "group" in bad.json()["detail"]
        assert (await client.get("/_streams/progress/has%20space")).status_code == 400
        post = await client.post("/_streams/progress/g")
        assert post.status_code == 405 and post.headers["allow"] == "GET"


async def test_websocket_sends_items_then_changes_and_resumes() -> None:
    async with served() as (runtime, url):
        assert runtime.streams is not None
        progress = runtime.streams.api.progress
        await progress.set("v1", "job", {"pct": 1})
        with trio.fail_after(10):
            ws = await WebSocket.connect(ws_url(url, "/_streams/progress/v1"))
            sync = json.loads(await ws.receive_text() or "")
            assert sync["event"] == {"type": "sync", "data": [{"pct": 1, "id": "job"}]}
            await progress.set("v1", "job", {"pct": 2})
            update = json.loads(await ws.receive_text() or "")
            assert (update["eventId"], update["event"]["type"]) == (2, "update")
            await ws.aclose()
            await progress.set("v1", "job", {"pct": 3})
            again = await WebSocket.connect(ws_url(url, "/_streams/progress/v1?lastEventId=2"))
            resumed = json.loads(await again.receive_text() or "")
            await again.aclose()
        assert (resumed["eventId"], resumed["event"]["data"]) == (3, {"pct": 3, "id": "job"})


async def test_websocket_refusals_are_http_answers() -> None:
    async with served() as (_, url):
        with trio.fail_after(10):
            with pytest.raises(Rejected) as denied:
                await WebSocket.connect(ws_url(url, "/_streams/private/g"))
            assert denied.value.status == 403
            assert json.loads(denied.value.body)["status"] == 403
            with pytest.raises(Rejected) as unknown:
                await WebSocket.connect(ws_url(url, "/_streams/nope/g"))
            assert unknown.value.status == 404
            ws = await WebSocket.connect(
                ws_url(url, "/_streams/tokened/g"), [(b"authorization", f"Bearer {TOKEN}".encode())]
            )
            assert json.loads(await ws.receive_text() or "")["event"]["type"] == "sync"
            await ws.aclose()


async def test_clients_that_leave_are_unsubscribed() -> None:
    async with served() as (runtime, url):
        assert runtime.streams is not None
        hub = runtime.streams.hub
        with trio.fail_after(10):
            async with sse(url, "/_streams/progress/g") as events:
                await events.next()
                assert hub.subscriber_count("progress") == 1
            ws = await WebSocket.connect(ws_url(url, "/_streams/progress/g"))
            await ws.receive_text()
            assert hub.subscriber_count("progress") == 1
            await ws.aclose()
            while hub.subscriber_count():
                await trio.sleep(0.01)  # the server notices the closed sockets
            await runtime.streams.api.progress.set("g", "x", 1)  # nobody to deliver to


async def test_a_slow_client_is_dropped_without_blocking_publishers() -> None:
    async with served(buffer=4, send_timeout=30.0) as (runtime, url):
        assert runtime.streams is not None
        progress = runtime.streams.api.progress
        blob = "x" * 64 * 1024
        with trio.fail_after(20):
            async with sse(url, "/_streams/progress/g") as events:
                await events.next()
                # The client reads nothing while 300 large changes go out: its socket fills,
                # its session blocks in send, its hub buffer overflows. Publishing goes on.
                for n in range(300):
                    await progress.set("g", "item", {"n": n, "blob": blob})
                assert runtime.streams.hub.statistics().dropped == 1
                seen = []
                while True:
                    event = await events.next()
                    if event["event"] == "close":
                        break
                    seen.append(event["data"]["event"]["data"]["n"])
        assert "fell more than 4 changes behind" in event["data"]["reason"]
        assert seen == list(range(len(seen)))  # what it got, it got in order
        assert len(seen) < 300


async def test_stopping_the_server_ends_streams_with_a_reason() -> None:
    with trio.fail_after(10):
        async with served() as (runtime, url), sse(url, "/_streams/progress/g") as events:
            await events.next()
            runtime.stop()
            closing = await events.next()
    assert closing["event"] == "close" and "stopping" in closing["data"]["reason"]


async def test_open_streams_outlive_the_keep_alive_timeout() -> None:
    # A stream is a request in flight (SSE) or an upgraded connection (WebSocket), never an
    # idle keep-alive connection: the idle timer must not close it.
    async with served(keep_alive_timeout=0.3) as (runtime, url):
        assert runtime.streams is not None
        with trio.fail_after(10):
            ws = await WebSocket.connect(ws_url(url, "/_streams/progress/g"))
            await ws.receive_text()
            async with sse(url, "/_streams/progress/g") as events:
                await events.next()
                await trio.sleep(1.0)  # more than three keep-alive timeouts pass
                await runtime.streams.api.progress.set("g", "x", 1)
                assert (await events.next())["event"] == "create"
                assert json.loads(await ws.receive_text() or "")["event"]["type"] == "create"
            await ws.aclose()
