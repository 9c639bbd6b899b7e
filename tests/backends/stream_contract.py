"""The stream storage contract (`StreamBackend` in motet/backends/_protocol.py), run on every
backend by tests/backends/test_stream_storage.py.

Same rules as contract.py: tests take `mock_clock` (manual, never autojump) and wait with
`ContractTools.quiet`; a polling follower (SQLite across processes) is moved on with
`mock_clock.jump`.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from motet._errors import BackendError
from motet.backends._protocol import supports_streams
from motet.backends._stream_records import LOG_LENGTH, StreamChange

from .contract import ContractTools


class StreamContract(ContractTools):
    async def follow(self, backend: Any, nursery: trio.Nursery) -> list[StreamChange]:
        seen: list[StreamChange] = []
        await nursery.start(backend.stream_follow, seen.append)
        return seen

    async def until(self, mock_clock: MockClock, done: Any, tries: int = 60) -> None:
        """Let followers run (moving virtual time for polling ones) until `done()`."""
        for _ in range(tries):
            await self.quiet()
            if done():
                return
            mock_clock.jump(0.5)
        assert done(), "the followers never caught up"

    async def test_supports_streams(self, backend: Any, mock_clock: MockClock) -> None:
        assert supports_streams(backend)

    async def test_set_creates_then_updates_with_increasing_event_ids(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        first = await backend.stream_set("progress", "v1", "job", {"pct": 0})
        second = await backend.stream_set("progress", "v1", "job", {"pct": 50})
        assert (first.kind, first.seq, first.id, first.data) == ("create", 1, "job", {"pct": 0})
        assert (second.kind, second.seq, second.data) == ("update", 2, {"pct": 50})
        assert await backend.stream_get("progress", "v1", "job") == {"pct": 50}
        assert await backend.stream_get("progress", "v1", "other") is None
        assert await backend.stream_get("progress", "nobody", "job") is None

    async def test_event_ids_count_per_group(self, backend: Any, mock_clock: MockClock) -> None:
        await backend.stream_set("progress", "a", "x", 1)
        await backend.stream_set("progress", "a", "y", 2)
        b = await backend.stream_set("progress", "b", "x", 3)
        other = await backend.stream_set("chat", "a", "x", 4)
        assert (b.seq, other.seq) == (1, 1)

    async def test_delete_is_a_change_only_when_the_item_existed(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        await backend.stream_set("progress", "v1", "job", {"pct": 1})
        gone = await backend.stream_delete("progress", "v1", "job")
        assert gone is not None and (gone.kind, gone.seq, gone.data) == ("delete", 2, {"pct": 1})
        assert await backend.stream_delete("progress", "v1", "job") is None
        assert (await backend.stream_items("progress", "v1")).seq == 2
        assert await backend.stream_get("progress", "v1", "job") is None

    async def test_send_is_logged_but_stores_no_item(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        event = {"type": "typing", "data": {"user": "ann"}}
        sent = await backend.stream_send("chat", "room", None, event)
        aimed = await backend.stream_send("chat", "room", "msg-1", event)
        assert (sent.kind, sent.id, sent.data, sent.seq) == ("event", None, event, 1)
        assert (aimed.id, aimed.seq) == ("msg-1", 2)
        snapshot = await backend.stream_items("chat", "room")
        assert (snapshot.items, snapshot.seq) == ([], 2)
        assert [c.kind for c in await backend.stream_since("chat", "room", 0)] == ["event"] * 2

    async def test_items_are_ordered_by_id_with_the_last_event_id(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        for id in ("b", "c", "a"):
            await backend.stream_set("todo", "inbox", id, {"id": id})
        snapshot = await backend.stream_items("todo", "inbox")
        assert snapshot.items == [("a", {"id": "a"}), ("b", {"id": "b"}), ("c", {"id": "c"})]
        assert snapshot.seq == 3
        empty = await backend.stream_items("todo", "never")
        assert (empty.items, empty.seq) == ([], 0)

    async def test_since_returns_what_came_after(self, backend: Any, mock_clock: MockClock) -> None:
        for n in range(5):
            await backend.stream_set("progress", "v1", "job", {"pct": n})
        later = await backend.stream_since("progress", "v1", 2)
        assert [(c.seq, c.data) for c in later] == [
            (3, {"pct": 2}),
            (4, {"pct": 3}),
            (5, {"pct": 4}),
        ]
        assert await backend.stream_since("progress", "v1", 5) == []
        assert await backend.stream_since("progress", "never", 0) == []

    async def test_since_an_id_from_the_future_or_negative_asks_for_a_resync(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        await backend.stream_set("progress", "v1", "job", 1)
        assert await backend.stream_since("progress", "v1", 7) is None
        assert await backend.stream_since("progress", "v1", -1) is None
        assert await backend.stream_since("progress", "never", 3) is None

    async def test_the_log_keeps_only_the_last_changes(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        async with trio.open_nursery() as nursery:
            for worker in range(20):

                async def write(worker: int = worker) -> None:
                    for n in range((LOG_LENGTH + 20) // 20):
                        await backend.stream_set("progress", "busy", f"w{worker}", n)

                nursery.start_soon(write)
        last = (await backend.stream_items("progress", "busy")).seq
        assert last == LOG_LENGTH + 20
        assert await backend.stream_since("progress", "busy", 5) is None  # trimmed away
        kept = await backend.stream_since("progress", "busy", last - LOG_LENGTH)
        assert kept is not None and [c.seq for c in kept] == list(
            range(last - LOG_LENGTH + 1, last + 1)
        )

    async def test_groups_and_names_are_listed(self, backend: Any, mock_clock: MockClock) -> None:
        await backend.stream_set("progress", "v2", "job", 1)
        await backend.stream_set("progress", "v1:a", "job", 1)
        await backend.stream_set("chat", "room", "m", 1)
        assert await backend.stream_groups("progress") == ["v1:a", "v2"]
        assert await backend.stream_groups("unknown") == []
        assert await backend.stream_names() == ["chat", "progress"]

    async def test_data_round_trips_and_is_isolated_from_mutation(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        data: dict[str, Any] = {"s": "é ✓", "n": 1.5, "l": [1, None, True], "d": {"x": {}}}
        await backend.stream_set("progress", "v1", "job", data)
        data["l"].append("mutated")
        got = await backend.stream_get("progress", "v1", "job")
        assert got == {"s": "é ✓", "n": 1.5, "l": [1, None, True], "d": {"x": {}}}
        got["s"] = "changed"
        assert (await backend.stream_get("progress", "v1", "job"))["s"] == "é ✓"

    async def test_non_json_data_is_refused_before_storing(
        self, backend: Any, mock_clock: MockClock
    ) -> None:
        with pytest.raises(BackendError, match="not JSON"):
            await backend.stream_set("progress", "v1", "job", {"when": object()})
        assert (await backend.stream_items("progress", "v1")).seq == 0

    @pytest.mark.parametrize(
        ("stream", "group", "id"),
        [("bad name", "g", "i"), ("ok", "", "i"), ("ok", "a/b", "i"), ("ok", "g", "with space")],
    )
    async def test_bad_names_are_refused(
        self, backend: Any, mock_clock: MockClock, stream: str, group: str, id: str
    ) -> None:
        with pytest.raises(ValueError, match="stream"):
            await backend.stream_set(stream, group, id, 1)

    async def test_a_follower_gets_every_later_change_in_order(
        self, backend: Any, nursery: trio.Nursery, mock_clock: MockClock
    ) -> None:
        await backend.stream_set("progress", "v1", "job", "before")
        seen = await self.follow(backend, nursery)
        await backend.stream_set("progress", "v1", "job", 1)
        await backend.stream_send("progress", "v1", None, {"type": "tick"})
        await backend.stream_delete("progress", "v1", "job")
        await self.until(mock_clock, lambda: len(seen) >= 3)
        assert [(c.seq, c.kind) for c in seen] == [(2, "update"), (3, "event"), (4, "delete")]


class SharedStreamContract(StreamContract):
    """Two instances over one storage (needs `other_instance`)."""

    async def test_a_change_on_one_instance_reaches_the_other_s_follower(
        self, backend: Any, other_instance: Any, nursery: trio.Nursery, mock_clock: MockClock
    ) -> None:
        mine = await self.follow(backend, nursery)
        theirs = await self.follow(other_instance, nursery)
        await other_instance.stream_set("progress", "v1", "job", {"pct": 10})
        await backend.stream_set("progress", "v1", "job", {"pct": 20})
        await self.until(mock_clock, lambda: len(mine) >= 2 and len(theirs) >= 2)
        assert [c.data for c in mine] == [c.data for c in theirs] == [{"pct": 10}, {"pct": 20}]
        assert [c.seq for c in mine] == [1, 2]
        assert await other_instance.stream_get("progress", "v1", "job") == {"pct": 20}
