"""The console's JSON endpoints: health, flows, routes, queues and dead letters (inspect,
re-drive, discard), state, cron with next fire times, traces."""

from __future__ import annotations

from typing import Any

from motet.steps import load_step

from ._app import http_step, open_observed, queue_step


def app_steps(fail: list[bool]) -> list[Any]:
    async def put(request: Any, ctx: Any) -> Any:
        await ctx.state.set("notes", request.path_params["key"], request.body)
        await ctx.emit("note.saved", {"key": request.path_params["key"]})
        return {"status": 201, "body": {"saved": True}}

    async def index(data: Any, ctx: Any) -> None:
        if fail[0]:
            raise RuntimeError("index offline")
        ctx.logger.info("indexed", key=data["key"])

    async def nightly(ctx: Any) -> None:
        pass

    return [
        http_step("PutNote", "PUT", "/notes/:key", put, enqueues=["note.saved"], flows=["notes"]),
        queue_step("IndexNote", "note.saved", index, options={"maxRetries": 0}, flows=["notes"]),
        load_step(
            {
                "name": "Nightly",
                "triggers": [
                    {"type": "cron", "expression": "0 3 * * *", "timezone": "Europe/Paris"}
                ],
            },
            nightly,
        ),
    ]


async def test_dead_letters_can_be_inspected_redriven_and_discarded(autojump_clock: Any) -> None:
    fail = [True]
    async with open_observed(app_steps(fail)) as app:
        for key in ("a", "b"):
            assert (await app.http.put(f"/notes/{key}", json={"text": key})).status_code == 201
        await app.settle()
        queues = (await app.http.get("/_motet/queues")).json()["queues"]
        listed = (
            await app.http.get(
                "/_motet/dead-letters", params={"subscription": "IndexNote@note.saved"}
            )
        ).json()
        letters = listed["dead_letters"]
        assert sorted(d["message"]["data"]["key"] for d in letters) == ["a", "b"]
        assert letters[0]["error"] == "RuntimeError: index offline" and letters[0]["attempts"] == 1
        fail[0] = False
        first, second = letters[0]["id"], letters[1]["id"]
        redriven = await app.http.post(
            "/_motet/dead-letters/redrive", json={"ids": [first, "no-such-id"]}
        )
        discarded = await app.http.post("/_motet/dead-letters/discard", json={"ids": [second]})
        await app.settle()
        after = (await app.http.get("/_motet/dead-letters")).json()["dead_letters"]
        health = (await app.http.get("/_motet/health")).json()
        logs = (await app.http.get("/_motet/logs", params={"q": "indexed"})).json()["logs"]
    index = next(q for q in queues if q["subscription"] == "IndexNote@note.saved")
    assert (index["dead"], index["ready"], index["options"]["max_retries"]) == (2, 0, 0)
    assert redriven.json() == {"redriven": 1} and discarded.json() == {"discarded": 1}
    assert after == []
    assert health["status"] == "ok" and health["dead"] == 0 and health["pending"] == 0
    assert [line["fields"]["key"] for line in logs] == [letters[0]["message"]["data"]["key"]]


async def test_state_browser_flows_routes_and_cron(autojump_clock: Any) -> None:
    async with open_observed(app_steps([False])) as app:
        await app.http.put("/notes/k1", json={"text": "one"})
        await app.settle()
        groups = (await app.http.get("/_motet/state")).json()
        items = (await app.http.get("/_motet/state/notes")).json()
        one = (await app.http.get("/_motet/state/notes/k1")).json()
        missing = await app.http.get("/_motet/state/notes/zzz")
        flows = (await app.http.get("/_motet/flows", params={"flow": "notes"})).json()
        routes = (await app.http.get("/_motet/routes")).json()["routes"]
        cron = (await app.http.get("/_motet/cron")).json()
    assert groups == {"groups": ["notes"]}
    assert items["items"] == [{"key": "k1", "value": {"text": "one"}}]
    assert one["value"] == {"text": "one"} and missing.status_code == 404
    assert flows["flows"] == ["notes"]
    assert {n["id"] for n in flows["nodes"]} == {
        "step:PutNote",
        "step:IndexNote",
        "route:PUT /notes/:key",
    }
    edge = next(e for e in flows["edges"] if e["label"] == "note.saved")
    assert (edge["from"], edge["to"]) == ("step:PutNote", "step:IndexNote")
    assert routes == [
        {
            "step": "PutNote",
            "method": "PUT",
            "path": "/notes/:key",
            "body": False,
            "description": "",
        }
    ]
    [nightly] = cron["cron"]
    # The clock starts at 2026-01-01T00:00Z; 03:00 in Paris is 02:00Z.
    assert nightly["next_iso"] == [
        "2026-01-01T02:00:00.000+00:00",
        "2026-01-02T02:00:00.000+00:00",
        "2026-01-03T02:00:00.000+00:00",
    ]
    assert nightly["timezone"] == "Europe/Paris" and nightly["last"] is None


async def test_trace_list_and_unknown_trace(autojump_clock: Any) -> None:
    async with open_observed(app_steps([False])) as app:
        trace_id = (await app.http.put("/notes/x", json={})).headers["x-trace-id"]
        await app.settle()
        listed = (await app.http.get("/_motet/traces", params={"step": "IndexNote"})).json()
        one = (await app.http.get(f"/_motet/traces/{trace_id}")).json()
        unknown = await app.http.get("/_motet/traces/" + "0" * 32)
    [summary] = listed["traces"]
    assert summary["trace_id"] == trace_id and summary["root"] == "PUT /notes/:key"
    assert summary["spans"] == 3 and summary["steps"] == ["IndexNote", "PutNote"]
    assert [(s["name"], s["depth"]) for s in one["spans"]] == [
        ("PUT /notes/:key", 0),
        ("PutNote", 1),
        ("IndexNote", 2),
    ]
    assert unknown.status_code == 404
