"""One caller's payload never fails another caller's write (issue 11, item 1).

A lone surrogate (`"\\ud800"`, what `json.loads('"\\\\ud800"')` gives) is a Python str that
has no UTF-8 form. The rule on every backend: JSON values (message data, state values)
keep such strings losslessly, as JSON `\\u` escapes, as SQLite and memory always did. Names
stored as raw Redis strings (a message group) have no such escape: the call that passes one
is refused with a `BackendError` naming it, and only that call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from motet._clock import WallClock
from motet._envelope import random_id
from motet._errors import BackendError
from motet.backends._memory import MemoryBackend
from motet.backends._protocol import Backend
from motet.backends._redis import RedisBackend
from motet.backends._sqlite import SqliteBackend
from motet.state import StateWrite
from motet.state._store import StateStore
from motet.testing import open_test_runtime

from .._redis_server import RedisServer, redis_server
from .contract import ContractTools, env, sub

LONE = "\ud800"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(
    request: pytest.FixtureRequest, nursery: trio.Nursery, clock: WallClock, tmp_path: Path
) -> Backend:
    if request.param == "memory":
        made: Backend = MemoryBackend()
    elif request.param == "sqlite":
        made = SqliteBackend(tmp_path / "motet.db")
    else:
        server = request.getfixturevalue("server")
        made = RedisBackend(server.url, prefix="t" + random_id()[:12])
    started: Backend = await nursery.start(made.run, clock)
    return started


class TestLoneSurrogates(ContractTools):
    quiet_seconds = 0.1

    async def test_a_batch_with_one_lone_surrogate_delivers_every_message_losslessly(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        subscription = sub()
        await backend.declare([subscription])
        failures: list[BaseException] = []

        async def publish(data: object) -> None:
            try:
                await backend.publish([env(data)])
            except Exception as exc:
                failures.append(exc)

        # Started together, so the Redis publisher's group commit joins them into batches.
        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(publish, {"n": n})
                if n == 25:
                    nursery.start_soon(publish, {"event": LONE, "n": -1})
        assert failures == []
        got = await self.receive_all(backend, subscription)
        assert sorted(d.envelope.data["n"] for d in got) == [-1, *range(50)]
        [bad] = [d.envelope.data for d in got if d.envelope.data["n"] == -1]
        assert bad == {"event": LONE, "n": -1}

    async def test_state_keeps_a_lone_surrogate_and_its_change_event(
        self, backend: Backend, mock_clock: MockClock
    ) -> None:
        change = await backend.state_write(
            "pets", "p1", StateWrite.set({"name": LONE, "ok": "é"}), trace_id="t"
        )
        assert change.value == {"name": LONE, "ok": "é"}
        assert await backend.state_get("pets", "p1") == {"name": LONE, "ok": "é"}
        change = await backend.state_write(
            "pets", "p1", StateWrite.update({"tag": LONE + "x"}), trace_id="t"
        )
        assert change.value == {"name": LONE, "ok": "é", "tag": LONE + "x"}
        assert await backend.state_list("pets") == [("p1", change.value)]


async def test_a_name_redis_cannot_store_fails_only_its_own_publish(
    nursery: trio.Nursery, clock: WallClock, server: RedisServer, mock_clock: MockClock
) -> None:
    backend: RedisBackend = await nursery.start(
        RedisBackend(server.url, prefix="t" + random_id()[:12]).run, clock
    )
    subscription = sub()
    await backend.declare([subscription])
    outcomes: dict[int, str] = {}

    async def publish(n: int, group: str | None) -> None:
        try:
            await backend.publish([env({"n": n}, group=group)])
            outcomes[n] = "ok"
        except BackendError as exc:
            outcomes[n] = str(exc)

    async with trio.open_nursery() as batch:
        for n in range(20):
            batch.start_soon(publish, n, LONE if n == 7 else None)
    assert "not valid Unicode" in outcomes[7] and "group" in outcomes[7]
    assert {n: o for n, o in outcomes.items() if n != 7} == {n: "ok" for n in range(20) if n != 7}
    got = await ContractTools().receive_all(backend, subscription)
    assert sorted(d.envelope.data["n"] for d in got) == [n for n in range(20) if n != 7]


class TestNamesWithoutUtf8:
    """The same on every backend: a name (not a JSON value) with a lone surrogate is refused
    where it is given, with a ValueError naming it, before any backend sees it."""

    async def test_state_names(self, backend: Backend, mock_clock: MockClock) -> None:
        store = StateStore(backend, lambda value: value, "t")
        with pytest.raises(ValueError, match=r"state namespace .* not valid Unicode"):
            await store.set("pets" + LONE, "k", {"a": 1})
        with pytest.raises(ValueError, match=r"state key .* not valid Unicode"):
            await store.update("pets", LONE, {"a": 1})
        assert await store.set("pets", "k", {"name": LONE}) == {"name": LONE}

    async def test_message_groups(self, mock_clock: MockClock) -> None:
        async with open_test_runtime([]) as app:
            with pytest.raises(ValueError, match=r"message group .* not valid Unicode"):
                await app.emit("orders", {"n": 1}, group="g" + LONE)
            await app.emit("orders", {"n": LONE}, group="g")


async def test_over_http_one_client_s_lone_surrogate_fails_no_other_request(
    server: RedisServer,
) -> None:
    """The issue's scenario: POST /pets from many clients, one of them sending a lone
    surrogate escape; every request is answered 201 and every pet gets its message."""
    from motet.steps import load_step

    created: list[Any] = []

    async def create(request: Any, ctx: Any) -> Any:
        body = request.body
        await ctx.state.set("pets", str(body["id"]), body)
        await ctx.emit("pet.created", body)
        return {"status": 201, "body": body}

    async def on_created(data: Any, ctx: Any) -> None:
        created.append(data)

    steps = [
        load_step(
            {
                "name": "Create",
                "triggers": [{"type": "http", "method": "POST", "path": "/pets"}],
                "enqueues": ["pet.created"],
            },
            create,
        ),
        load_step(
            {"name": "OnCreated", "triggers": [{"type": "queue", "topic": "pet.created"}]},
            on_created,
        ),
    ]
    backend = RedisBackend(server.url, prefix="t" + random_id()[:12])
    statuses: dict[int, int] = {}
    async with open_test_runtime(steps, backend=backend) as app:

        async def post(n: int) -> None:
            name = '"\\ud800"' if n == 13 else f'"pet {n}"'
            raw = f'{{"id": {n}, "name": {name}}}'
            reply = await app.http.post(
                "/pets", data=raw, headers={"content-type": "application/json"}
            )
            statuses[n] = reply.status

        async with trio.open_nursery() as clients:
            for n in range(40):
                clients.start_soon(post, n)
        await app.settle()
        stored = await app.state.get("pets", "13")
    assert statuses == {n: 201 for n in range(40)}
    assert sorted(d["id"] for d in created) == list(range(40))
    assert stored == {"id": 13, "name": LONE}
    assert [d["name"] for d in created if d["id"] == 13] == [LONE]
