"""Seed 004's background job patterns: upload + process, a job with progress and its status
API, fire and forget, batches, scheduled cleanup with get_group, metrics, priority queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ._app import fields_of, open_app, problem_errors


async def test_upload_answers_202_and_processes_in_the_background(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.post("/upload", json={"filename": "report.PDF"})
        assert r.status == 202 and r.json["status"] == "processing"
        file_id = r.json["fileId"]
        await app.settle(fail_fast=True)
        result = await app.state.get("processed_files", file_id)
        assert result["filename"] == "report.PDF" and result["extension"] == "pdf"
        assert app.messages("file.processed") == [{"fileId": file_id, "result": result}]
        assert app.log_messages("ProcessFile") == ["Processing file: report.PDF"]


async def test_upload_rejects_bad_requests(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.post("/upload", json={})
        assert r.status == 400
        assert problem_errors(r) == {"$.body.filename": "required field missing"}
        r = await app.http.post("/upload", json={"filename": ""})
        assert r.status == 400 and "filename" in r.text
        r = await app.http.post(
            "/upload", data="{oops", headers={"content-type": "application/json"}
        )
        assert r.status == 400 and r.json["type"] == "urn:motet:problem:malformed-json"
        r = await app.http.get("/upload")
        assert r.status == 405
        await app.settle(fail_fast=True)
        assert app.messages("file.uploaded") == []


async def test_video_job_reports_progress_through_the_status_api(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.post("/videos", json={"filename": "cat.mp4"})
        assert r.status == 202
        video_id = r.json["videoId"]
        assert r.json["statusUrl"] == f"/jobs/{video_id}"

        await app.advance(3.5)  # a chunk takes 1 s: progress 0, 10, 20 reported so far
        r = await app.http.get(f"/jobs/{video_id}")
        assert r.status == 200 and r.json == {"status": "processing", "progress": 20}

        await app.settle(fail_fast=True)
        r = await app.http.get(f"/jobs/{video_id}")
        assert r.json == {"status": "completed", "progress": 100}
        assert [m["progress"] for m in app.messages("video.progress")] == list(range(0, 101, 10))
        assert app.messages("video.completed") == [{"videoId": video_id}]


async def test_job_status_of_an_unknown_job_is_404(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.get("/jobs/nope")
        assert r.status == 404 and r.json == {"error": "Job not found"}


async def test_fire_and_forget(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.post("/events", json={"event": "user_login"})
        assert r.status == 202
        await app.settle(fail_fast=True)
        assert fields_of(app, "LogEvent", "Event shipped to log service") == [
            {"event": "user_login"}
        ]
        r = await app.http.post("/events", json={"event": 1})
        assert r.status == 400 and "$.body.event" in problem_errors(r)


async def test_welcome_email_on_registration(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        await app.emit("user.registered", {"email": "ann@example.com", "name": "Ann"})
        await app.settle(fail_fast=True)
        assert app.messages("email.sent") == [{"email": "ann@example.com", "type": "welcome"}]
        [sent] = fields_of(app, "SendWelcomeEmail", "Welcome email sent")
        assert sent["body"] == "Hi Ann, welcome to our app!"


async def test_a_batch_is_processed_in_chunks(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        await app.emit("batch.process", {"batchId": "b1", "items": list(range(25))})
        await app.settle(fail_fast=True)
        assert await app.state.get("batch_results", "b1") == [i * i for i in range(25)]
        assert await app.state.get("batches", "b1") == {"progress": 100}
        assert app.log_messages("ProcessBatch") == [
            "Batch b1: 40% complete",
            "Batch b1: 80% complete",
            "Batch b1: 100% complete",
        ]
        assert app.messages("batch.completed") == [{"batchId": "b1", "count": 25}]


async def test_nightly_cleanup_removes_expired_sessions_and_old_temp_files(
    autojump_clock: Any,
) -> None:
    async with open_app("jobs", start=datetime(2026, 1, 10, 0, 0, tzinfo=UTC)) as app:
        sessions = {"s1": "2026-01-10T01:00:00+00:00", "s2": "2026-01-10T05:00:00+00:00"}
        for sid, expires in sessions.items():
            await app.state.set("sessions", sid, {"id": sid, "expiresAt": expires})
        files = {"f1": "2026-01-02T01:00:00+00:00", "f2": "2026-01-09T00:00:00+00:00"}
        for fid, created in files.items():
            await app.state.set(
                "temp_files", fid, {"id": fid, "path": f"/tmp/{fid}", "createdAt": created}
            )
        await app.run_until(datetime(2026, 1, 10, 2, 30, tzinfo=UTC))
        assert await app.state.keys("sessions") == ["s2"]
        assert await app.state.keys("temp_files") == ["f2"]
        assert app.messages("cleanup.completed") == [
            {"cleaned": 2, "timestamp": "2026-01-10T02:00:00+00:00"}
        ]


async def test_job_metrics_every_5_minutes(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        for key, status in (("a", "completed"), ("b", "completed"), ("c", "failed")):
            await app.state.set("jobs", key, {"status": status})
        await app.advance(timedelta(minutes=10, seconds=1))
        metrics = [
            m
            for m in app.messages("metrics.collected")
            if m["timestamp"] > "2026-01-05T07:00:00+00:00"
        ]
        assert [m["timestamp"][11:16] for m in metrics] == ["07:05", "07:10"]
        assert {k: metrics[0][k] for k in ("queued", "processing", "completed", "failed")} == {
            "queued": 0,
            "processing": 0,
            "completed": 2,
            "failed": 1,
        }


async def test_waiting_jobs_run_by_priority_one_at_a_time(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        r = await app.http.post("/jobs", json={"name": "first", "priority": "low"})
        assert r.status == 202
        await app.advance(0.1)  # "first" is running (1 s); the others wait behind it
        for name, priority in (("later-low", "low"), ("normal", "normal"), ("urgent", "high")):
            r = await app.http.post("/jobs", json={"name": name, "priority": priority})
            assert r.status == 202
        r = await app.http.post("/jobs", json={"name": "x", "priority": "asap"})
        assert r.status == 400 and "$.body.priority" in problem_errors(r)

        await app.settle(fail_fast=True)
        ran = [f["name"] for f in fields_of(app, "RunPriorityJob", "Running job")]
        assert ran == ["first", "urgent", "normal", "later-low"]
        jobs = await app.state.list("jobs")
        assert [j["status"] for j in jobs] == ["completed"] * 4


async def test_a_report_is_generated_from_analytics_state(autojump_clock: Any) -> None:
    async with open_app("jobs") as app:
        await app.state.set("analytics:u1", "visits", {"name": "visits", "value": 42})
        await app.state.set("analytics:u1", "signups", {"name": "signups", "value": 3})
        await app.emit(
            "report.requested", {"reportId": "r1", "userId": "u1", "email": "ann@example.com"}
        )
        await app.settle(fail_fast=True)
        r = await app.http.get("/reports/r1")
        assert r.status == 200
        assert r.json["lines"] == ["Analytics Report", "signups: 3", "visits: 42"]
        assert app.messages("report.generated") == [{"reportId": "r1", "url": "/reports/r1"}]
        assert app.messages("email.send") == [
            {
                "to": "ann@example.com",
                "subject": "Your report is ready",
                "attachmentUrl": "/reports/r1",
            }
        ]
        assert (await app.http.get("/reports/r2")).status == 404
