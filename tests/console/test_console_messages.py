"""The console's message view in real headless Chromium: look up a message by id, see each
delivery (state, attempts, result, error with traceback), and cancel a running one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from motet import RuntimeOptions, open_runtime
from motet.backends import MemoryBackend
from motet.gateway import GatewayOptions
from motet.steps import load_step

from .test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium


def steps(release: trio.Event, stopped: list[str]) -> list[Any]:
    async def summarize(data: Any, ctx: Any) -> Any:
        return {"rows": data["n"] * 10}

    async def audit(data: Any, ctx: Any) -> None:
        try:
            await release.wait()
        except trio.Cancelled:
            stopped.append(ctx.message.id)
            raise

    async def flaky(data: Any, ctx: Any) -> None:
        raise RuntimeError("ledger offline")

    def queue_step(name: str, topic: str, handler: Any, **options: Any) -> Any:
        trigger = {"type": "queue", "topic": topic, **options}
        return load_step({"name": name, "triggers": [trigger]}, handler)

    return [
        queue_step("Summarize", "report.requested", summarize),
        queue_step("Audit", "report.requested", audit),
        queue_step("Ledger", "ledger.post", flaky, maxRetries=5, retryDelay=600_000),
    ]


def drive(url: str, ids: dict[str, str], shots: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))

            # Look a message up by typing its id.
            page.goto(f"{url}/_console/#messages")
            page.get_by_test_id("message-id").fill(ids["report"])
            page.get_by_test_id("message-lookup").click()
            deliveries = page.get_by_test_id("message-deliveries")
            summarize = deliveries.locator("tr[data-delivery='Summarize@report.requested']")
            expect(summarize).to_contain_text("done")
            expect(summarize.get_by_test_id("message-result")).to_contain_text('"rows": 30')
            audit = deliveries.locator("tr[data-delivery='Audit@report.requested']")
            expect(audit).to_contain_text("running")
            expect(page.get_by_test_id("message-state")).to_have_text("running")
            page.screenshot(path=str(shots / "10-message-running.png"), full_page=True)

            # Cancel it: the running handler stops, the delivery ends cancelled.
            page.get_by_test_id("message-cancel").click()
            expect(page.get_by_test_id("message-note")).to_contain_text("cancelled for")
            expect(audit).to_contain_text("cancelled")
            expect(page.get_by_test_id("message-state")).to_have_text("cancelled")
            expect(page.get_by_test_id("message-cancel")).to_be_disabled()
            page.screenshot(path=str(shots / "11-message-cancelled.png"), full_page=True)

            # A retrying message shows its last error and traceback.
            page.goto(f"{url}/_console/#messages/{ids['ledger']}")
            ledger = page.get_by_test_id("message-deliveries").locator("tr[data-delivery]")
            expect(ledger).to_contain_text("retrying")
            expect(ledger).to_contain_text("RuntimeError: ledger offline")
            expect(ledger.get_by_test_id("message-traceback")).to_contain_text("flaky")

            # An unknown id says so.
            page.goto(f"{url}/_console/#messages/{'0' * 32}")
            expect(page.get_by_test_id("message-missing")).to_contain_text("no message")
        finally:
            browser.close()
    return seen


async def test_message_status_and_cancel_in_headless_chromium() -> None:
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    release = trio.Event()
    stopped: list[str] = []
    with trio.fail_after(60):
        async with open_runtime(
            steps(release, stopped),
            backend=MemoryBackend(),
            serve=GatewayOptions(port=0),
            options=RuntimeOptions(log_sink=False),
        ) as runtime:
            report = await runtime.emit("report.requested", {"n": 3})
            ledger = await runtime.emit("ledger.post", {"amount": 5})
            url = runtime.gateway_urls[0]
            ids = {"report": report, "ledger": ledger}
            seen = await trio.to_thread.run_sync(drive, url, ids, ARTIFACTS)
            release.set()
    assert seen["errors"] == []
    assert stopped == [report]
    for name in ("10-message-running", "11-message-cancelled"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
