"""Streams across instances on Redis: a change made through instance 1 reaches an SSE (and a
WebSocket) client of instance 2, and a client that moves to the other instance resumes
with Last-Event-ID where it left off."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import trio

from motet._envelope import random_id
from motet.backends._redis import RedisBackend

from .._redis_server import RedisServer, redis_server
from ._ws import WebSocket
from .test_streams import served, sse, ws_url


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


async def test_a_change_on_one_instance_reaches_clients_of_the_other(server: RedisServer) -> None:
    prefix = "t" + random_id()[:12]
    with trio.fail_after(20):
        async with (
            served(RedisBackend(server.url, prefix=prefix)) as (one, _),
            served(RedisBackend(server.url, prefix=prefix)) as (two, url_two),
        ):
            assert one.streams is not None
            progress = one.streams.api.progress
            await progress.set("v1", "job", {"pct": 0})
            async with sse(url_two, "/_streams/progress/v1") as events:
                sync = await events.next()
                assert sync["data"]["event"]["data"] == [{"pct": 0, "id": "job"}]
                ws = await WebSocket.connect(ws_url(url_two, "/_streams/progress/v1"))
                assert json.loads(await ws.receive_text() or "")["eventId"] == 1
                for pct in (25, 50):
                    await progress.set("v1", "job", {"pct": pct})
                got = [await events.next() for _ in range(2)]
                ws_got = [json.loads(await ws.receive_text() or "") for _ in range(2)]
                await ws.aclose()
            assert [e["data"]["event"]["data"]["pct"] for e in got] == [25, 50]
            assert [m["eventId"] for m in ws_got] == [2, 3]
            # The client reconnects to instance 1 after seeing event 2: it gets 3 only.
            async with sse(one.gateway_urls[0], "/_streams/progress/v1", last_event_id="2") as ev:
                resumed = await ev.next()
            assert (resumed["id"], resumed["data"]["event"]["data"]["pct"]) == ("3", 50)
            assert two.streams is not None and two.streams.hub.statistics().dropped == 0
