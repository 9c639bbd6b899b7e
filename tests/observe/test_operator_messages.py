"""The operator API's message endpoints: GET /_motet/messages/{id} (status of each delivery)
and POST /_motet/messages/{id}/cancel, with wrong inputs and the operator token."""

from __future__ import annotations

from typing import Any

import trio

from ._app import open_observed, queue_step


def steps(gate: trio.Event) -> list[Any]:
    async def report(data: Any, ctx: Any) -> Any:
        return {"rows": data["n"] * 10}

    async def slow(data: Any, ctx: Any) -> None:
        await gate.wait()

    return [
        queue_step("Report", "report.requested", report),
        queue_step("Audit", "report.requested", slow, options={"concurrency": 1}),
    ]


async def test_status_shows_each_delivery_and_cancel_stops_the_rest(autojump_clock: Any) -> None:
    gate = trio.Event()
    async with open_observed(steps(gate)) as app:
        first = await app.runtime.emit("report.requested", {"n": 1})
        second = await app.runtime.emit("report.requested", {"n": 2})
        await trio.testing.wait_all_tasks_blocked()
        got = await app.http.get(f"/_motet/messages/{first}")
        assert got.status_code == 200
        body = got.json()
        by_step = {d["step"]: d for d in body["deliveries"]}
        assert body["id"] == first and body["topic"] == "report.requested"
        assert by_step["Report"]["state"] == "done" and by_step["Report"]["result"] == {"rows": 10}
        assert by_step["Report"]["finished_at_iso"].startswith("2026-")
        assert by_step["Audit"]["state"] == "running" and body["state"] == "running"

        queued = (await app.http.get(f"/_motet/messages/{second}")).json()
        assert {d["step"]: d["state"] for d in queued["deliveries"]}["Audit"] == "queued"
        cancelled = await app.http.post(f"/_motet/messages/{second}/cancel", json={})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["cancelled"] == ["Audit@report.requested"]
        running = await app.http.post(f"/_motet/messages/{first}/cancel", json={})
        assert running.json()["running"] == ["Audit@report.requested"]
        again = await app.http.post(f"/_motet/messages/{first}/cancel", json={})
        gate.set()
        await app.settle()
        after = (await app.http.get(f"/_motet/messages/{second}")).json()
        logs = (await app.http.get("/_motet/logs", params={"q": "cancelled"})).json()["logs"]
    assert again.status_code == 409
    assert "already over" in again.json()["detail"]
    assert again.headers["content-type"].startswith("application/problem+json")
    assert {d["step"]: d["state"] for d in after["deliveries"]} == {
        "Audit": "cancelled",
        "Report": "done",
    }
    assert any("message cancelled from the console" in str(line) for line in logs), logs


async def test_wrong_ids_and_methods(autojump_clock: Any) -> None:
    async with open_observed(steps(trio.Event())) as app:
        unknown = await app.http.get("/_motet/messages/" + "0" * 32)
        cancel_unknown = await app.http.post("/_motet/messages/" + "0" * 32 + "/cancel", json={})
        empty = await app.http.get("/_motet/messages/")
        spaced = await app.http.get("/_motet/messages/a%20b")
        nested = await app.http.get("/_motet/messages/a/b")
        too_long = await app.http.get("/_motet/messages/" + "x" * 300)
        wrong_post = await app.http.post("/_motet/messages/abc", json={})
        delete = await app.http.delete("/_motet/messages/abc")
    assert unknown.status_code == 404 and "retention" in unknown.json()["detail"]
    assert cancel_unknown.status_code == 404 and "no message" in cancel_unknown.json()["detail"]
    for bad in (empty, spaced, nested, too_long, wrong_post):
        assert bad.status_code == 400, (bad.request.url, bad.text)
        assert "message id" in bad.json()["detail"] or "expected" in bad.json()["detail"]
    assert delete.status_code == 405


async def test_the_operator_token_guards_the_message_endpoints(autojump_clock: Any) -> None:
    async with open_observed(steps(trio.Event()), token="tok") as app:
        message_id = await app.runtime.emit("report.requested", {"n": 1})
        bare = await app.http.get(f"/_motet/messages/{message_id}")
        bare_cancel = await app.http.post(f"/_motet/messages/{message_id}/cancel", json={})
        auth = {"authorization": "Bearer tok"}
        allowed = await app.http.get(f"/_motet/messages/{message_id}", headers=auth)
    assert bare.status_code == 401 and bare_cancel.status_code == 401
    assert allowed.status_code == 200
