"""A failing queue handler's traceback, with the user's file and line, in the console (real
headless Chromium): in the trace's span panel, in the dead letter's "Inspect" view, and under
a log line the handler wrote with `exc_info`.
Screenshots go to test-artifacts/console/ beside the main console test's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from motet import Observer, RuntimeOptions, open_runtime
from motet._runtime import Runtime
from motet.backends import MemoryBackend
from motet.gateway import GatewayOptions
from motet.observe import SpanQuery, Telemetry
from motet.steps import load_steps

from .test_console import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium

STEP_FILE = """\
config = {
    "name": "ImportOrders",
    "triggers": [{"type": "queue", "topic": "orders.imported", "maxRetries": 0}],
}

async def handler(order, ctx):
    try:
        return sum(item["price"] for item in order["items"])
    except KeyError as exc:
        ctx.logger.error("order has no items", exc_info=exc)
        raise
"""
USER_FRAME = 'import_orders_step.py", line 8, in handler'
TRACE_ID = "7" * 32


class Settled(Observer):
    """Wakes a waiter each time a delivery is acked, retried or buried."""

    def __init__(self) -> None:
        self.event = trio.Event()

    def on_settled(self) -> None:
        self.event.set()


async def failed_once(runtime: Runtime, backend: MemoryBackend, settled: Settled) -> Any:
    """Emit one order, wait (without sleeping) until it is a dead letter, and return the
    letter and the handler span's traceback."""
    await runtime.emit("orders.imported", {"id": 7}, trace_id=TRACE_ID)
    while not await backend.dead_letters():
        await settled.event.wait()
        settled.event = trio.Event()
    [telemetry] = [part for part in runtime.parts if isinstance(part, Telemetry)]
    await telemetry.flush()
    [span] = await telemetry.spans(SpanQuery(step="ImportOrders"))
    [letter] = await backend.dead_letters()
    return letter, span.traceback


def inspect_failure(url: str, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))

            page.goto(f"{url}/_console/#traces/{TRACE_ID}")
            page.get_by_test_id("waterfall").locator("tr", has_text="ImportOrders").click()
            panel = page.get_by_test_id("span-traceback")
            expect(panel).to_be_visible()
            expect(panel).to_contain_text(USER_FRAME)
            expect(panel).to_contain_text("KeyError: 'items'")
            seen["span_traceback"] = panel.inner_text()
            page.screenshot(path=str(shots / "09-span-traceback.png"), full_page=True)

            page.goto(f"{url}/_console/#logs")
            page.locator("input[placeholder='trace id']").fill(TRACE_ID)
            line = page.get_by_test_id("log-table").locator("tr", has_text="order has no items")
            expect(line).to_be_visible()
            line.locator("summary", has_text="traceback").click()
            expect(line.get_by_test_id("traceback")).to_contain_text(USER_FRAME)
            page.screenshot(path=str(shots / "11-log-traceback.png"))

            page.goto(f"{url}/_console/#queues")
            letter = page.get_by_test_id("dead-letters").locator(
                "tr[data-dead-letter]", has_text="KeyError"
            )
            expect(letter).to_be_visible()
            expect(page.get_by_test_id("dl-traceback")).to_be_hidden()
            letter.get_by_role("button", name="Inspect").click()
            inspected = page.get_by_test_id("dl-traceback")
            expect(inspected).to_be_visible()
            expect(inspected).to_contain_text(USER_FRAME)
            expect(inspected).to_contain_text("KeyError: 'items'")
            seen["dead_letter_traceback"] = inspected.inner_text()
            page.screenshot(path=str(shots / "10-dead-letter-traceback.png"), full_page=True)
        finally:
            browser.close()
    return seen


async def test_a_failed_handlers_traceback_is_in_the_span_panel_and_dead_letter_inspect(
    tmp_path: Path,
) -> None:
    require_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "import_orders_step.py").write_text(STEP_FILE)
    backend = MemoryBackend()
    settled = Settled()
    with trio.fail_after(60):
        async with open_runtime(
            load_steps(tmp_path / "steps"),
            backend=backend,
            serve=GatewayOptions(port=0),
            options=RuntimeOptions(log_sink=False),
            observers=[settled],
        ) as runtime:
            letter, span_traceback = await failed_once(runtime, backend, settled)
            seen = await trio.to_thread.run_sync(
                inspect_failure, runtime.gateway_urls[0], ARTIFACTS
            )
    assert seen["errors"] == []
    assert span_traceback is not None and USER_FRAME in span_traceback
    assert USER_FRAME in seen["span_traceback"] and USER_FRAME in seen["dead_letter_traceback"]
    assert letter.error == "KeyError: 'items'"
    # The dead letter keeps the last attempt's traceback itself (what Inspect shows).
    assert letter.traceback is not None and USER_FRAME in letter.traceback
    for name in ("09-span-traceback", "10-dead-letter-traceback", "11-log-traceback"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000
