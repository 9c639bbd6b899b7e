"""examples/video_progress: seed 004's video job streaming its progress. On virtual time
through the test harness, then in real headless Chromium: the page's progress bar, fed by an
EventSource on /_streams/videoProgress/{id}, moves from 0 to 100."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from motet import RuntimeOptions, open_runtime
from motet.gateway import GatewayOptions
from motet.testing import open_test_runtime

from ..console.test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "video_progress"


async def test_the_job_publishes_its_progress_on_the_stream(autojump_clock: Any) -> None:
    async with open_test_runtime("steps", root=EXAMPLE) as app:
        streams = app.runtime.streams
        assert streams is not None and set(streams.configs) == {"videoProgress"}
        r = await app.http.post("/videos", json={"filename": "cat.mp4", "chunkSeconds": 1})
        assert r.status == 202
        video = r.json["videoId"]
        assert r.json["stream"] == f"/_streams/videoProgress/{video}"
        with streams.hub.subscribe("videoProgress", video) as subscriber:
            await app.advance(3.5)  # three tenths processed
            item = await streams.api.videoProgress.get(video, "job")
            assert item == {"status": "processing", "progress": 20, "id": "job"}
            await app.settle(fail_fast=True)
            seen = []
            while True:
                try:
                    seen.append(subscriber.changes.receive_nowait().data["progress"])
                except trio.WouldBlock:
                    break
        assert seen == [*range(0, 101, 10), 100]  # and "completed"
        final = await streams.api.videoProgress.get(video, "job")
        assert final == {"status": "completed", "progress": 100, "id": "job"}
        page = await app.http.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert "EventSource" in page.text


def watch_the_bar(url: str, shot: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 600})
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
            page.goto(f"{url}/?chunk=0.3")
            bar = page.get_by_test_id("bar")
            page.get_by_role("button", name="Upload").click()
            # Part way: the bar has moved but the job is not done.
            page.wait_for_function(
                "() => { const v = document.getElementById('bar').value; return v > 0 && v < 100; }"
            )
            seen["midway"] = bar.evaluate("b => b.value")
            page.screenshot(path=str(shot.with_name("video-progress-midway.png")))
            expect(page.get_by_test_id("status")).to_have_text("completed 100 %")
            seen["final"] = bar.evaluate("b => b.value")
            seen["values"] = page.evaluate("() => window.progressSeen")
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    return seen


async def test_the_progress_bar_moves_in_chromium() -> None:
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(60):
        async with open_runtime(
            "steps",
            root=EXAMPLE,
            backend="memory",
            serve=GatewayOptions(port=0),
            options=RuntimeOptions(log_sink=False),
        ) as runtime:
            url = runtime.gateway_urls[0]
            seen = await trio.to_thread.run_sync(
                watch_the_bar, url, ARTIFACTS / "video-progress-done.png"
            )
    assert seen["errors"] == []
    assert 0 < seen["midway"] < 100 and seen["final"] == 100
    values = seen["values"]
    assert values == sorted(values) and values[-1] == 100
    assert len(set(values)) >= 5  # it moved in steps, not in one jump
