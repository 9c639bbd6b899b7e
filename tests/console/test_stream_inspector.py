"""The console's stream inspector: the operator endpoints (`/_motet/streams...`) and the view,
in headless Chromium, on examples/video_progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from motet import RuntimeOptions, open_runtime
from motet.gateway import GatewayOptions

from .test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "video_progress"


def served() -> Any:
    return open_runtime(
        "steps",
        root=EXAMPLE,
        backend="memory",
        serve=GatewayOptions(port=0),
        options=RuntimeOptions(log_sink=False),
    )


async def test_the_operator_api_lists_streams_groups_and_items() -> None:
    with trio.fail_after(30):
        async with served() as runtime, httpx.AsyncClient(base_url=runtime.gateway_urls[0]) as c:
            assert runtime.streams is not None
            await runtime.streams.api.videoProgress.set("v1", "job", {"progress": 40})
            listing = (await c.get("/_motet/streams")).json()
            [stream] = listing["streams"]
            assert stream["name"] == "videoProgress" and stream["public"] is True
            assert stream["groups"] == ["v1"] and stream["subscribers"] == 0
            assert listing["hub"]["dropped"] == 0
            group = (await c.get("/_motet/streams/videoProgress/v1")).json()
            assert group["event_id"] == 1
            assert group["items"] == [{"id": "job", "value": {"progress": 40, "id": "job"}}]
            assert (await c.get("/_motet/streams/videoProgress")).json()["groups"] == ["v1"]
            missing = await c.get("/_motet/streams/nope/v1")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            assert (await c.post("/_motet/streams", json={})).status_code == 405


def inspect_streams(url: str, video: str, shot: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 700})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
            page.goto(f"{url}/_console/#streams")
            streams = page.get_by_test_id("stream-list")
            expect(streams.locator("[data-stream=videoProgress]")).to_contain_text("public")
            streams.locator(f'[data-group="videoProgress/{video}"]').click()
            items = page.get_by_test_id("stream-items")
            expect(items.locator("tr", has_text="job")).to_contain_text('"completed"')
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    return seen


async def test_the_stream_inspector_in_headless_chromium() -> None:
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(60):
        async with served() as runtime, httpx.AsyncClient(base_url=runtime.gateway_urls[0]) as c:
            r = await c.post("/videos", json={"filename": "a.mp4", "chunkSeconds": 0.01})
            video = r.json()["videoId"]
            seen = await trio.to_thread.run_sync(
                inspect_streams, runtime.gateway_urls[0], video, ARTIFACTS / "09-streams.png"
            )
    assert seen["errors"] == []
