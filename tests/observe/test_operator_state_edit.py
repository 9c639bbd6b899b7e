"""The operator edits state: `POST /_motet/state/set` and `/_motet/state/delete` write through
the backend as a handler's `ctx.state` would (state triggers fire), refuse bad input with a
problem, and need the operator token like every operator endpoint."""

from __future__ import annotations

from typing import Any

from motet.steps import load_step

from ._app import open_observed


def watcher(seen: list[Any]) -> Any:
    async def on_change(event: Any, ctx: Any) -> None:
        seen.append((event["event"], event["key"], event["value"]))

    return load_step(
        {"name": "WatchNotes", "triggers": [{"type": "state", "namespace": "notes"}]}, on_change
    )


async def test_set_and_delete_write_through_the_backend_and_fire_state_triggers(
    autojump_clock: Any,
) -> None:
    seen: list[Any] = []
    async with open_observed([watcher(seen)]) as app:
        created = await app.http.post(
            "/_motet/state/set", json={"namespace": "notes", "key": "a", "value": {"n": 1}}
        )
        updated = await app.http.post(
            "/_motet/state/set", json={"namespace": "notes", "key": "a", "value": [1, "x"]}
        )
        listed = (await app.http.get("/_motet/state/notes")).json()
        deleted = await app.http.post(
            "/_motet/state/delete", json={"namespace": "notes", "key": "a"}
        )
        again = await app.http.post("/_motet/state/delete", json={"namespace": "notes", "key": "a"})
        await app.settle()
        logs = (await app.http.get("/_motet/logs", params={"q": "from the console"})).json()
    assert created.status_code == 200 and created.json()["event"] == "created"
    assert updated.json()["event"] == "updated"
    assert listed["items"] == [{"key": "a", "value": [1, "x"]}]
    assert deleted.json()["event"] == "deleted"
    assert again.status_code == 200 and again.json()["event"] is None  # nothing to delete
    assert sorted(seen, key=str) == sorted(
        [("created", "a", {"n": 1}), ("updated", "a", [1, "x"]), ("deleted", "a", None)], key=str
    )
    assert [line["msg"] for line in logs["logs"]].count("state key set from the console") == 2


async def test_wrong_state_edits_are_problems_and_change_nothing(autojump_clock: Any) -> None:
    async with open_observed([]) as app:
        answers = [
            await app.http.post("/_motet/state/set", json=body)
            for body in (
                ["notes", "a"],
                {"namespace": "notes", "key": "a"},  # no value
                {"namespace": "", "key": "a", "value": 1},
                {"namespace": "notes", "key": 7, "value": 1},
            )
        ]
        answers.append(
            await app.http.post(
                "/_motet/state/set",
                content=b'{"namespace": "notes", "key": "\\ud800", "value": 1}',
                headers={"content-type": "application/json"},
            )
        )
        not_json = await app.http.post(
            "/_motet/state/set", content=b"namespace=notes", headers={"content-type": "text/plain"}
        )
        bad_json = await app.http.post(
            "/_motet/state/delete", content=b"{", headers={"content-type": "application/json"}
        )
        groups = (await app.http.get("/_motet/state")).json()["groups"]
    assert [a.status_code for a in answers] == [400] * 5
    assert '"value"' in answers[1].json()["detail"]
    assert "'namespace'" in answers[2].json()["detail"]
    assert "'key'" in answers[3].json()["detail"]
    assert "lone surrogate" in answers[4].json()["detail"]
    assert not_json.status_code == 415
    assert bad_json.status_code == 400
    assert groups == []


async def test_state_edits_need_the_operator_token(autojump_clock: Any) -> None:
    async with open_observed([], token="s3cret") as app:
        body = {"namespace": "notes", "key": "a", "value": 1}
        refused = await app.http.post("/_motet/state/set", json=body)
        allowed = await app.http.post(
            "/_motet/state/set", json=body, headers={"authorization": "Bearer s3cret"}
        )
    assert refused.status_code == 401
    assert allowed.status_code == 200
