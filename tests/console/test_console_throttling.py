"""The console's queues view marks a throttled queue, in real headless Chromium.

A step limited to 1 start a minute gets three messages: one starts, two wait for tokens
(held back, not leased), and the queues table shows the limit and a "throttled" badge on
that queue only. A message emitted for tomorrow shows as scheduled on both queues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from motet import RuntimeOptions, open_runtime
from motet.backends import MemoryBackend
from motet.gateway import GatewayOptions
from motet.steps import load_step

from .test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium


def steps() -> list[Any]:
    async def slow(data: Any, ctx: Any) -> None:
        pass

    async def free(data: Any, ctx: Any) -> None:
        pass

    return [
        load_step(
            {"name": "Slow", "triggers": [{"type": "queue", "topic": "job", "rateLimit": "1/m"}]},
            slow,
        ),
        load_step({"name": "Free", "triggers": [{"type": "queue", "topic": "job"}]}, free),
    ]


def look(url: str, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
            page.goto(f"{url}/_console/#queues")
            table = page.get_by_test_id("queue-table")
            slow = table.locator('tr[data-subscription="Slow@job"]')
            free = table.locator('tr[data-subscription="Free@job"]')
            expect(slow.get_by_test_id("throttled")).to_be_visible()
            expect(slow).to_contain_text("1/m")
            expect(free).to_be_visible()
            # The delayed emit is counted on both subscribers, apart from retries.
            expect(slow.get_by_test_id("scheduled")).to_have_text("1")
            expect(free.get_by_test_id("scheduled")).to_have_text("1")
            seen["free_badges"] = free.get_by_test_id("throttled").count()
            page.screenshot(path=str(shots / "09-throttled.png"))
        finally:
            browser.close()
    return seen


async def test_the_queues_view_marks_a_throttled_queue() -> None:
    require_chromium()
    shots = ARTIFACTS
    shots.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(60):
        async with open_runtime(
            steps(),
            backend=MemoryBackend(),
            serve=GatewayOptions(port=0),
            options=RuntimeOptions(log_sink=False, shutdown_timeout=0.0),
        ) as runtime:
            for n in range(3):
                await runtime.emit("job", {"n": n})
            await runtime.emit("job", {"n": "tomorrow"}, delay=86_400)
            while not runtime.view.throttling()["Slow@job"].throttled:
                await trio.sleep(0.01)
            seen = await trio.to_thread.run_sync(look, runtime.gateway_urls[0], shots)
    assert seen["errors"] == []
    assert seen["free_badges"] == 0
    assert (shots / "09-throttled.png").stat().st_size > 10_000
