"""The lean Redis connection of the backend's hot path (`_redis_wire.Wire`) against a real
redis-server: URLs, pipelining, error replies, broken connections, AUTH, unix sockets."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from motet.backends._redis import RedisBackend
from motet.backends._redis_wire import Address, ReplyError, Wire, WireError, sha1

from .._collector import collector_off, left_for_the_collector
from .._redis_server import RedisServer, free_port, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def wire_to(url: str, nursery: trio.Nursery, *, pipelined: bool = True) -> Wire:
    return Wire(Address.parse(url), nursery, connect_timeout=5.0, pipelined=pipelined)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://10.0.0.5:6390/2", Address(host="10.0.0.5", port=6390, db=2)),
        ("redis://cache", Address(host="cache")),
        ("redis://:s%40cret@cache/0", Address(host="cache", password="s@cret")),
        ("redis://ops:pw@cache:7000?db=3", Address("cache", 7000, None, 3, "ops", "pw")),
        ("rediss://cache.internal:6380/0", Address(host="cache.internal", port=6380, tls=True)),
        ("unix:///run/redis.sock?db=4", Address(path="/run/redis.sock", db=4)),
    ],
)
def test_urls_are_read_into_addresses(url: str, address: Address) -> None:
    assert Address.parse(url) == address


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://cache:6379/0", "must start with redis://"),
        ("redis://cache:port/0", "port that is not a number"),
        ("redis://cache:6379/zero", "database must be a number, got 'zero'"),
        ("unix://", "names no socket"),
        ("unix:///run/redis.sock?db=x", "database must be a number"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Address.parse(url)


def test_a_backend_with_a_malformed_url_fails_when_created() -> None:
    with pytest.raises(ValueError, match="database must be a number"):
        RedisBackend("redis://127.0.0.1:6379/first")


async def test_concurrent_calls_are_pipelined_and_each_gets_its_own_reply(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire = wire_to(server.url, nursery)
    replies: dict[int, str] = {}

    async def echo(n: int) -> None:
        replies[n] = await wire.call("ECHO", f"reply {n}")

    async with trio.open_nursery() as callers:
        for n in range(300):
            callers.start_soon(echo, n)
    assert replies == {n: f"reply {n}" for n in range(300)}
    await wire.aclose()


async def test_an_error_reply_raises_and_the_connection_goes_on(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire = wire_to(server.url, nursery)
    await wire.call("SET", "wire:text", "not a number")
    with pytest.raises(ReplyError, match="not an integer"):
        await wire.call("INCR", "wire:text")
    assert await wire.call("ECHO", "still here") == "still here"
    await wire.aclose()


@pytest.mark.parametrize("pipelined", [True, False])
async def test_an_error_reply_leaves_nothing_for_the_collector(
    nursery: trio.Nursery, server: RedisServer, pipelined: bool
) -> None:
    # An error reply is raised to its caller; an error kept by the reply it came in (or a
    # frame it was raised through) would hold the caller's and the reader's frames in a
    # cycle until the collector's next pass. The collector is off while this looks.
    wire = wire_to(server.url, nursery, pipelined=pipelined)
    await wire.call("SET", "wire:text", "not a number")
    with collector_off():
        for _ in range(2):
            with pytest.raises(ReplyError, match="not an integer"):
                await wire.call("INCR", "wire:text")
            with pytest.raises(ReplyError, match="not an integer"):
                await wire.calls(
                    [("GET", "wire:text"), ("INCR", "wire:text"), ("INCR", "wire:text")]
                )
        left = left_for_the_collector()
    assert left == [], "an error reply left these for the collector"
    await wire.aclose()


async def test_a_script_redis_forgot_is_loaded_again(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire = wire_to(server.url, nursery)
    source = "return ARGV[1] .. KEYS[1]"
    assert await wire.script(source, sha1(source), ["k"], ["v"]) == "vk"
    await wire.call("SCRIPT", "FLUSH")  # as a Redis restart without the script cache does
    assert await wire.script(source, sha1(source), ["k"], ["w"]) == "wk"
    await wire.aclose()


async def test_nothing_listening_is_a_wire_error_naming_the_address(
    nursery: trio.Nursery,
) -> None:
    port = free_port()
    wire = wire_to(f"redis://127.0.0.1:{port}/0", nursery)
    with pytest.raises(WireError, match=f"cannot connect to Redis at 127.0.0.1:{port}"):
        await wire.call("PING")


async def test_a_server_killed_mid_call_fails_the_calls_and_the_wire_reconnects_after(
    nursery: trio.Nursery,
) -> None:
    # Each waiting call fails with an error of its own: one object raised in every waiting
    # caller would carry each raiser's frames into the traceback the others report.
    with redis_server() as own:
        wire = wire_to(own.url, nursery)
        assert await wire.call("PING") == "PONG"
        failed: dict[str, WireError] = {}

        async def waiting_a() -> None:
            try:
                await wire.call("BLPOP", "wire:never", 0)
            except WireError as exc:
                failed["a"] = exc

        async def waiting_b() -> None:
            try:
                await wire.call("BLPOP", "wire:never", 0)
            except WireError as exc:
                failed["b"] = exc

        async with trio.open_nursery() as waiting:
            waiting.start_soon(waiting_a)
            waiting.start_soon(waiting_b)
            await trio.testing.wait_all_tasks_blocked()
            await trio.to_thread.run_sync(own.kill)
        a, b = failed["a"], failed["b"]
        assert a is not b and str(a) == str(b)
        frames = {
            k: [f.name for f in traceback.extract_tb(e.__traceback__)] for k, e in failed.items()
        }
        assert "waiting_a" in frames["a"] and "waiting_b" not in frames["a"]
        assert "waiting_b" in frames["b"] and "waiting_a" not in frames["b"]
        with pytest.raises(WireError):
            await wire.call("PING")
        await trio.to_thread.run_sync(own.start)
        assert await wire.call("PING") == "PONG"
        await wire.aclose()


async def test_a_cancelled_unpipelined_call_closes_its_connection_and_the_next_reconnects(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire = wire_to(server.url, nursery, pipelined=False)
    watcher = wire_to(server.url, nursery)
    await wire.connect()
    first_id = wire.client_id
    async with trio.open_nursery() as calling:
        calling.start_soon(wire.call, "BLPOP", "wire:never", 0)
        for _ in range(10_000):  # round trips until Redis has the call blocked
            if "blocked_clients:1\r" in await watcher.call("INFO", "clients"):
                break
        calling.cancel_scope.cancel()
    assert wire.client_id is None
    for _ in range(10_000):  # Redis let go of the blocked call with its connection
        if "blocked_clients:0\r" in await watcher.call("INFO", "clients"):
            break
    assert await wire.call("ECHO", "again") == "again"
    assert wire.client_id not in (None, first_id)
    for each in (wire, watcher):
        await each.aclose()


async def test_a_password_is_sent_and_a_wrong_one_is_refused(
    nursery: trio.Nursery,
) -> None:
    with redis_server(extra=["--requirepass", "s3cret"]) as own:
        url = f"redis://:s3cret@127.0.0.1:{own.port}/0"
        good = wire_to(url, nursery)
        assert await good.call("PING") == "PONG"
        await good.aclose()
        with pytest.raises(ReplyError, match="refused AUTH"):
            await wire_to(f"redis://:wrong@127.0.0.1:{own.port}/0", nursery).call("PING")
        with pytest.raises(ReplyError, match="NOAUTH"):
            await wire_to(own.url, nursery).call("PING")


async def test_a_unix_socket_and_its_database_number(nursery: trio.Nursery, tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with redis_server(extra=["--unixsocket", str(sock)]) as own:
        wire = wire_to(f"unix://{sock}?db=3", nursery)
        await wire.call("SET", "wire:where", "db 3")
        assert await wire.call("GET", "wire:where") == "db 3"
        tcp = wire_to(f"redis://127.0.0.1:{own.port}/3", nursery)
        assert await tcp.call("GET", "wire:where") == "db 3"
        other_db = wire_to(f"redis://127.0.0.1:{own.port}/0", nursery)
        assert await other_db.call("GET", "wire:where") is None
        for each in (wire, tcp, other_db):
            await each.aclose()


async def test_several_commands_go_in_one_write_and_an_error_reply_raises(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire = wire_to(server.url, nursery)
    assert await wire.calls([("SET", "wire:n", 1), ("INCR", "wire:n"), ("GET", "wire:n")]) == [
        "OK",
        2,
        "2",
    ]
    with pytest.raises(ReplyError, match="wrong number of arguments"):
        await wire.calls([("GET", "wire:n"), ("GET",)])
    assert await wire.call("GET", "wire:n") == "2"  # the connection stays in step
    await wire.aclose()


async def test_a_caller_cancelled_while_reading_its_own_reply_leaves_the_others_theirs(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    wire, other = wire_to(server.url, nursery), wire_to(server.url, nursery)
    await wire.call("DEL", "wire:later")
    got: list[str] = []

    async def blocked_read(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await wire.call("BLPOP", "wire:later", 0)  # nobody else reads: it reads its own

    async def echo() -> None:
        got.append(await wire.call("ECHO", "behind the blocked read"))

    with trio.fail_after(10):
        async with trio.open_nursery() as callers:
            reading = await callers.start(blocked_read)
            await trio.testing.wait_all_tasks_blocked()
            callers.start_soon(echo)
            await trio.testing.wait_all_tasks_blocked()
            reading.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # its reply comes after the blocked read's
            await other.call("RPUSH", "wire:later", "x")  # ends the read; its reply is dropped
    assert got == ["behind the blocked read"]
    assert await wire.call("ECHO", "next") == "next"
    await wire.aclose()
    await other.aclose()


async def test_commands_larger_than_the_socket_buffer_are_never_interleaved(
    nursery: trio.Nursery, server: RedisServer
) -> None:
    # A command the kernel does not take in one write holds the send lock for the rest of
    # it: the callers that come meanwhile (small ones, which would otherwise be written at
    # once) queue behind it, and every caller still gets its own reply.
    wire = wire_to(server.url, nursery)
    big = {n: str(n) * (3_000_000 // len(str(n))) for n in range(4)}
    got: dict[str, object] = {}

    async def echo_big(n: int) -> None:
        got[f"big {n}"] = await wire.call("ECHO", big[n])

    async def echo_small(n: int) -> None:
        got[f"small {n}"] = await wire.call("ECHO", f"small {n}")

    with trio.fail_after(30):
        async with trio.open_nursery() as callers:
            for n in range(4):
                callers.start_soon(echo_big, n)
                callers.start_soon(echo_small, n)
    assert got == {
        **{f"big {n}": big[n] for n in range(4)},
        **{f"small {n}": f"small {n}" for n in range(4)},
    }
    assert await wire.calls([("ECHO", big[0]), ("ECHO", "after")]) == [big[0], "after"]
    await wire.aclose()
