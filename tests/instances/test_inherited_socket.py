"""GatewayOptions.listen_fd: the gateway serves a listening socket it was handed."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trio

from motet._errors import GatewayError
from motet.gateway import GatewayOptions, serve
from motet.gateway._serve import inherited_socket


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


async def test_the_gateway_serves_an_inherited_socket_and_leaves_it_open(
    listening: socket.socket,
) -> None:
    port = listening.getsockname()[1]
    stop = trio.Event()
    options = GatewayOptions(port=1, listen_fd=listening.fileno())  # port is not bound
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve(
                _app, options, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        assert urls == [f"http://127.0.0.1:{port}"]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "served"
        stop.set()
    # The gateway closed its duplicate only: the socket still listens for the next server.
    assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1


def test_a_socket_that_is_not_listening_is_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(GatewayError, match=rf"fd {sock.fileno()}: expected a listening"):
            inherited_socket(sock.fileno())
    finally:
        sock.close()


def test_a_file_descriptor_that_is_not_a_socket_is_refused() -> None:
    read_end, write_end = os.pipe()
    try:
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(GatewayError, match=rf"fd {read_end}: .*expected an open listening"):
            inherited_socket(read_end)
        assert len(os.listdir("/proc/self/fd")) == before  # the duplicate was closed
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_closed_file_descriptor_is_refused() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(GatewayError, match=rf"fd {read_end}: Bad file descriptor"):
        inherited_socket(read_end)
