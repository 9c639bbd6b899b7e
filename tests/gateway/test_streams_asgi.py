"""The stream endpoint as an ASGI app on virtual time (no sockets): heartbeats on an idle
stream, a crashing access hook logged and denied, HEAD, and a client leaving."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from motet._clock import WallClock
from motet._errors import BackendUnavailable
from motet.backends import MemoryBackend
from motet.backends._stream_records import StreamChange
from motet.gateway import GatewayOptions
from motet.gateway._streams import HEARTBEAT_SECONDS, StreamEndpoint
from motet.steps._schema import make_converter
from motet.streams import StreamConfig, StreamRequest, StreamService


class Invoker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    async def invoke_http(self, *args: Any) -> Any:
        raise AssertionError("not used")

    def log_error(self, message: str, **fields: Any) -> None:
        self.errors.append((message, fields))


def crashing(request: StreamRequest, group: str) -> bool:
    raise KeyError("token")


class Client:
    """One request's side of ASGI: what was sent, and a disconnect to trigger."""

    def __init__(self, path: str, method: str = "GET") -> None:
        self.scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [],
        }
        self.sent: list[dict[str, Any]] = []
        self.gone = trio.Event()
        self.done = trio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    async def run(self, endpoint: StreamEndpoint) -> None:
        try:
            await endpoint(self.scope, self.receive, self.send)  # type: ignore[arg-type]
        finally:
            self.done.set()


async def open_endpoint(nursery: trio.Nursery) -> tuple[StreamEndpoint, Invoker, StreamService]:
    backend = MemoryBackend()
    await nursery.start(backend.run, WallClock())
    configs = [StreamConfig("p", public=True), StreamConfig("broken", can_access=crashing)]
    service = StreamService(configs, backend, make_converter())
    await nursery.start(service.run)
    invoker = Invoker()
    return StreamEndpoint(service, invoker, GatewayOptions()), invoker, service


async def test_an_idle_stream_gets_heartbeats_and_ends_when_the_client_leaves(
    autojump_clock: Any, nursery: trio.Nursery
) -> None:
    endpoint, _, service = await open_endpoint(nursery)
    client = Client("/_streams/p/g")
    nursery.start_soon(client.run, endpoint)
    await trio.sleep(HEARTBEAT_SECONDS * 2 + 1)
    assert client.status == 200
    assert client.body.count(b": keep-alive\n\n") == 2
    assert service.hub.subscriber_count() == 1
    client.gone.set()
    await client.done.wait()
    assert service.hub.subscriber_count() == 0


async def test_a_crashing_access_hook_denies_and_is_logged(
    autojump_clock: Any, nursery: trio.Nursery
) -> None:
    endpoint, invoker, _ = await open_endpoint(nursery)
    client = Client("/_streams/broken/g")
    await client.run(endpoint)
    assert client.status == 403
    [(message, fields)] = invoker.errors
    assert "can_access hook of stream 'broken' failed" in message and "KeyError" in message
    assert isinstance(fields["exc_info"], KeyError)


async def test_head_answers_the_headers_only(autojump_clock: Any, nursery: trio.Nursery) -> None:
    endpoint, _, _ = await open_endpoint(nursery)
    client = Client("/_streams/p/g", method="HEAD")
    await client.run(endpoint)
    assert client.status == 200 and client.body == b""


async def test_a_burst_of_changes_goes_out_in_one_write(
    autojump_clock: Any, nursery: trio.Nursery
) -> None:
    endpoint, _, service = await open_endpoint(nursery)
    client = Client("/_streams/p/g")
    nursery.start_soon(client.run, endpoint)
    await trio.testing.wait_all_tasks_blocked()
    before = len(client.sent)
    for seq in range(1, 6):  # delivered while the session waits: it finds them all at once
        service.hub.deliver(StreamChange("p", "g", seq, "update", "i", {"n": seq}))
    await trio.testing.wait_all_tasks_blocked()
    [write] = client.sent[before:]
    assert write["body"].count(b"event: update") == 5
    assert [int(line[4:]) for line in write["body"].split(b"\n") if line.startswith(b"id: ")] == [
        1,
        2,
        3,
        4,
        5,
    ]
    client.gone.set()


async def test_a_backend_failure_ends_the_stream_with_a_reason_and_a_log_line(
    autojump_clock: Any, nursery: trio.Nursery
) -> None:
    endpoint, invoker, service = await open_endpoint(nursery)

    async def unreachable(*args: Any) -> Any:
        raise BackendUnavailable("the backend is away")

    assert service.backend is not None
    service.backend.stream_items = unreachable  # type: ignore[method-assign]
    client = Client("/_streams/p/g")
    await client.run(endpoint)
    assert client.status == 200
    assert b"event: close" in client.body and b"could not serve the stream" in client.body
    [(message, fields)] = invoker.errors
    assert "stream 'p' group 'g' failed: BackendUnavailable" in message
    assert fields["error_id"].encode() in client.body
    assert service.hub.subscriber_count() == 0
