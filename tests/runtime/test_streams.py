"""`ctx.streams` through the runtime (Motia's shape), stream files, and the hub's bounded
buffers; all on virtual time."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from motet import InputValidationError, StepDefinitionError, http, queue
from motet._errors import BackendUnavailable
from motet.backends import MemoryBackend
from motet.backends._stream_records import StreamChange
from motet.steps import load_step
from motet.streams import StreamConfig, StreamHub, UnknownStreamError, load_streams
from motet.testing import open_test_runtime


@attrs.frozen
class Progress:
    pct: int
    status: str = "processing"


def _steps() -> list[Any]:
    async def upload(request: Any, ctx: Any) -> Any:
        video = request.body["videoId"]
        await ctx.streams.progress.set(video, "job", {"pct": 0})
        await ctx.emit("video.uploaded", {"videoId": video})
        return {"status": 202, "body": {"videoId": video}}

    async def process(data: Any, ctx: Any) -> None:
        for pct in (50, 100):
            item = await ctx.streams.progress.set(data["videoId"], "job", {"pct": pct})
            assert item == {"pct": pct, "id": "job"}
        await ctx.streams.progress.send({"groupId": data["videoId"]}, {"type": "done"})

    def report(data: Any, ctx: Any) -> None:  # a plain def: ctx.streams blocks in its thread
        ctx.streams.progress.set(data["videoId"], "report", {"pct": -1})
        assert ctx.streams["progress"].get(data["videoId"], "report") == {"pct": -1, "id": "report"}

    return [
        load_step(
            {
                "name": "Upload",
                "triggers": [http("POST", "/videos")],
                "enqueues": ["video.uploaded"],
            },
            upload,
        ),
        load_step({"name": "Process", "triggers": [queue("video.uploaded")]}, process),
        load_step({"name": "Report", "triggers": [queue("video.uploaded")]}, report),
    ]


async def test_handlers_publish_to_streams(autojump_clock: Any) -> None:
    async with open_test_runtime(_steps(), streams=[StreamConfig("progress")]) as app:
        hub = app.runtime.streams.hub
        changes: list[StreamChange] = []
        with hub.subscribe("progress", "v1") as subscriber:
            response = await app.http.post("/videos", json={"videoId": "v1"})
            assert response.status_code == 202
            await app.settle(fail_fast=True)
            while True:
                try:
                    changes.append(subscriber.changes.receive_nowait())
                except trio.WouldBlock:
                    break
        progress = app.streams.progress
        assert await progress.get_group("v1") == [
            {"pct": 100, "id": "job"},
            {"pct": -1, "id": "report"},
        ]
        assert await progress.getGroup("v1") == await progress.get_group("v1")
        assert await progress.list_groups() == ["v1"]
    assert changes[0].kind == "create" and [c.seq for c in changes] == list(
        range(1, len(changes) + 1)
    )
    assert {c.kind for c in changes} == {"create", "update", "event"}


async def test_delete_returns_the_old_item(autojump_clock: Any) -> None:
    async with open_test_runtime([], streams=[StreamConfig("todo")]) as app:
        todo = app.runtime.streams.api.todo
        await todo.set("inbox", "t1", {"text": "milk"})
        assert await todo.delete("inbox", "t1") == {"text": "milk", "id": "t1"}
        assert await todo.delete("inbox", "t1") is None
        assert await todo.get("inbox", "t1") is None


async def test_unknown_stream_names_the_declared_ones(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        try:
            await ctx.streams.progres.set("g", "i", 1)
        except UnknownStreamError as exc:
            return {"status": 200, "body": {"error": str(exc)}}

    step = load_step({"name": "Typo", "triggers": [http("POST", "/typo")]}, handler)
    async with open_test_runtime([step], streams=[StreamConfig("progress")]) as app:
        error = (await app.http.post("/typo", json={})).json["error"]
    assert "'progres'" in error and "declared streams: progress" in error


async def test_ctx_streams_without_streams_says_how_to_declare_one(autojump_clock: Any) -> None:
    async def handler(request: Any, ctx: Any) -> Any:
        try:
            ctx.streams.anything  # noqa: B018
        except AttributeError as exc:
            return {"status": 200, "body": {"error": str(exc)}}

    step = load_step({"name": "None", "triggers": [http("GET", "/none")]}, handler)
    async with open_test_runtime([step], streams=[]) as app:
        error = (await app.http.get("/none")).json["error"]
    assert "*.stream.py" in error


async def test_a_project_without_streams_runs_no_stream_service(
    tmp_path: Path, autojump_clock: Any
) -> None:
    # Stream files are looked for beside the steps (none here, but a folder named like
    # one and a hidden file are not stream files): nothing streams, /_streams is no route,
    # and the harness's view says how to declare one.
    steps = tmp_path / "steps"
    (steps / "todo_stream.py").mkdir(parents=True)
    (steps / ".draft_stream.py").write_text("config = {'name': 'draft'}\n")
    (steps / "ping_step.py").write_text(
        "from motet import http\n"
        "config = {'name': 'Ping', 'triggers': [http('GET', '/ping')]}\n"
        "async def handler(request, ctx):\n    return {'status': 200, 'body': 'pong'}\n"
    )
    async with open_test_runtime("steps", root=tmp_path) as app:
        assert app.runtime.streams is None and app.runtime.stream_configs == []
        assert (await app.http.get("/ping")).status == 200
        assert (await app.http.get("/_streams/todo/inbox")).status == 404
        with pytest.raises(UnknownStreamError, match="declared streams: none"):
            app.streams.todo  # noqa: B018


async def test_items_are_validated_against_the_stream_schema(autojump_clock: Any) -> None:
    async with open_test_runtime([], streams=[StreamConfig("progress", schema=Progress)]) as app:
        progress = app.runtime.streams.api.progress
        assert await progress.set("v1", "job", {"pct": 5}) == {
            "pct": 5,
            "status": "processing",
            "id": "job",
        }
        with pytest.raises(InputValidationError, match="pct"):
            await progress.set("v1", "job", {"pct": "lots"})
        assert await progress.get("v1", "job") == {"pct": 5, "status": "processing", "id": "job"}


async def test_wrong_arguments_are_refused_with_what_was_expected(autojump_clock: Any) -> None:
    async with open_test_runtime([], streams=[StreamConfig("chat")]) as app:
        chat = app.runtime.streams.api.chat
        with pytest.raises(TypeError, match="'type'"):
            await chat.send({"groupId": "room"}, {"no": "type"})
        with pytest.raises(TypeError, match="channel"):
            await chat.send(42, {"type": "x"})
        with pytest.raises(ValueError, match="group id"):
            await chat.set("a/b", "i", 1)
        with pytest.raises(ValueError, match="item id"):
            await chat.set("room", "", 1)
        await chat.send("room", {"type": "typing", "data": {"user": "ann"}})


def test_stream_files_load_in_motia_shape(tmp_path: Path) -> None:
    (tmp_path / "progress.stream.py").write_text(
        textwrap.dedent(
            """
            config = {
                "name": "videoProgress",
                "schema": {"type": "object"},
                "baseConfig": {"storageType": "default"},
            }

            def can_access(request, group):
                return group == "public"
            """
        )
    )
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "chat_stream.py").write_text(
        "config = {'name': 'chat', 'public': True}\n"
    )
    (tmp_path / "other.py").write_text("config = {'name': 'ignored'}\n")
    chat, progress = sorted(load_streams(tmp_path), key=lambda s: s.name)
    assert (chat.name, chat.public) == ("chat", True)
    assert progress.name == "videoProgress" and progress.can_access is not None
    assert progress.storage_type == "default" and not progress.public


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("config = {'public': True}", "stream name must be an identifier"),
        ("config = {'name': 'a b'}", "stream name must be an identifier"),
        ("config = {'name': 'x', 'public': 'yes'}", "public must be true or false"),
        ("config = {'name': 'x', 'canAccess': 3}", "can_access must be a function"),
        ("config = {'name': 'x', 'sheme': {}}", "unknown config keys ['sheme']"),
        ("config = {'name': 'x', 'schema': 'Progress'}", "a schema must be"),
        ("config = ['x']", "must be a dict"),
        ("name = 'x'", "must export `config`"),
        ("import nothing_here\nconfig = {}", "could not import the stream file"),
    ],
)
def test_bad_stream_files_name_file_and_field(tmp_path: Path, source: str, message: str) -> None:
    path = tmp_path / "bad.stream.py"
    path.write_text(source + "\n")
    with pytest.raises(StepDefinitionError, match=r"bad\.stream\.py") as caught:
        load_streams(tmp_path)
    assert message in str(caught.value)


def test_two_streams_may_not_share_a_name(tmp_path: Path) -> None:
    (tmp_path / "a.stream.py").write_text("config = {'name': 'x'}\n")
    (tmp_path / "b_stream.py").write_text("config = {'name': 'x'}\n")
    with pytest.raises(StepDefinitionError, match="duplicate stream name 'x'"):
        load_streams(tmp_path)


async def test_the_runtime_finds_stream_files_beside_the_steps(
    tmp_path: Path, autojump_clock: Any
) -> None:
    steps = tmp_path / "steps"
    steps.mkdir()
    (steps / "todo.stream.py").write_text("config = {'name': 'todo'}\n")
    (steps / "add_step.py").write_text(
        textwrap.dedent(
            """
            from motet import http
            config = {"name": "Add", "triggers": [http("POST", "/todo")]}
            async def handler(request, ctx):
                return {"status": 200, "body": await ctx.streams.todo.set("inbox", "t1", {"x": 1})}
            """
        )
    )
    async with open_test_runtime("steps", root=tmp_path) as app:
        response = await app.http.post("/todo", json={})
    assert response.json == {"x": 1, "id": "t1"}


async def test_a_slow_subscriber_is_dropped_and_publishers_never_wait(autojump_clock: Any) -> None:
    hub = StreamHub(capacity=2)
    with hub.subscribe("s", "g") as slow, hub.subscribe("s", "g") as fast:
        for seq in (1, 2, 3):
            hub.deliver(StreamChange("s", "g", seq, "update", "i", seq))
            if seq < 3:
                assert fast.changes.receive_nowait().seq == seq
        assert slow.slow and "more than 2 changes behind" in (slow.closed_reason or "")
        assert [c.seq for c in (slow.changes.receive_nowait(), slow.changes.receive_nowait())] == [
            1,
            2,
        ]
        with pytest.raises(trio.EndOfChannel):
            slow.changes.receive_nowait()
        assert fast.changes.receive_nowait().seq == 3 and fast.closed_reason is None
        assert hub.statistics() == type(hub.statistics())(subscribers=1, delivered=6, dropped=1)
    assert hub.subscriber_count() == 0
    hub.close_all("bye")
    with hub.subscribe("s", "g") as late:
        assert late.closed_reason == "bye"


class FlakyFollow(MemoryBackend):
    """Following fails once, after it started (the backend went away for long)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = trio.Event()
        self.failed = False

    async def stream_follow(
        self, follower: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self.failed:
            return await super().stream_follow(follower, task_status=task_status)
        task_status.started()
        await self.fail.wait()
        self.failed = True
        raise BackendUnavailable("gone for too long")


async def test_following_that_fails_is_logged_ends_subscribers_and_resumes(
    autojump_clock: Any,
) -> None:
    backend = FlakyFollow()
    async with open_test_runtime([], backend=backend, streams=[StreamConfig("p")]) as app:
        hub = app.runtime.streams.hub
        with hub.subscribe("p", "g") as before:
            backend.fail.set()
            await app.settle()
            await trio.sleep(1)  # the retry's backoff
            with pytest.raises(trio.EndOfChannel):
                before.changes.receive_nowait()
            assert "lost track of stream changes" in (before.closed_reason or "")
        assert any("following stream changes failed" in m for m in app.log_messages())
        with hub.subscribe("p", "g") as after:
            await app.streams.p.set("g", "i", 1)
            assert after.changes.receive_nowait().seq == 1


async def test_a_json_schema_dict_validates_items_as_in_motia(autojump_clock: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"progress": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["progress"],
    }
    async with open_test_runtime([], streams=[StreamConfig("p", schema=schema)]) as app:
        assert await app.streams.p.set("v", "job", {"progress": 5}) == {"progress": 5, "id": "job"}
        with pytest.raises(InputValidationError, match="progress"):
            await app.streams.p.set("v", "job", {"progress": 500})
