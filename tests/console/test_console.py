"""The console in real headless Chromium (Debian's `chromium`, driven by Playwright's sync API
in a worker thread while the runtime serves the example app on trio).

One dead letter is seeded before the runtime starts (a message that failed during an
"outage"); the test then walks the console: flows graph, endpoint tester with its trace and
log lines, the log tail, the trace waterfall, re-driving the dead letter, state and cron.
Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from motet import RuntimeOptions, open_runtime
from motet._envelope import Envelope
from motet._runtime import Runtime
from motet.backends._sqlite import SqliteBackend
from motet.gateway import GatewayOptions
from motet.project import load_project
from motet.steps import load_steps

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# For a table: are all its header cells inside the viewport and the table no wider than the
# box that holds it (nothing hidden to the right, nothing clipped)?
FITS_IN_VIEW = """(table) => {
  const wrap = table.parentElement;
  const right = Math.min(window.innerWidth, wrap.getBoundingClientRect().right);
  const heads = [...table.querySelectorAll("thead th")];
  return {
    heads: heads.length,
    visible: heads.filter((th) => {
      const r = th.getBoundingClientRect();
      return r.width > 0 && r.right <= right + 1;
    }).length,
    overflow: table.scrollWidth - wrap.clientWidth,
  };
}"""
SEEDED = {"messageId": "msg-seeded-outage", "text": "sent during the outage", "priority": "high"}


def require_chromium() -> None:
    if Path(CHROMIUM).is_file():
        return
    reason = (
        "the browser tests need Debian's chromium (apt-get install -y chromium); "
        f"not found at {CHROMIUM}"
    )
    if os.environ.get("MOTET_REQUIRE_CHROMIUM") == "1":
        pytest.fail(reason + " and MOTET_REQUIRE_CHROMIUM=1 is set")
    pytest.skip(reason)


async def seed_dead_letter(db: Path, runtime: Runtime) -> None:
    """A message for ProcessMessage that already failed every attempt, in the db file."""
    backend = SqliteBackend(db)
    from motet import WallClock

    sub = next(s for s in runtime.subscriptions if s.key == "ProcessMessage@message.sent")
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.run, WallClock())
        await backend.declare(runtime.subscriptions)
        await backend.publish([Envelope(topic="message.sent", data=SEEDED, trace_id="5" * 32)])
        [delivery] = await backend.receive(sub, 1)
        await backend.bury(delivery, error="SMTPError: relay unreachable (simulated outage)")
        nursery.cancel_scope.cancel()


def drive_console(url: str, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))

            # Flows: the messages flow as a graph.
            page.goto(f"{url}/_console/#flows/messages")
            graph = page.get_by_test_id("flows-graph")
            expect(graph.locator('[data-node="step:SendMessage"]')).to_be_visible()
            expect(graph.locator('[data-node="route:POST /messages"]')).to_be_visible()
            expect(graph.locator(".edge-label", has_text="message.sent")).to_be_visible()
            seen["graph_nodes"] = graph.locator("g.node").count()
            page.screenshot(path=str(shots / "01-flows.png"))

            # Endpoint tester: send a request, see the response and its trace.
            page.goto(f"{url}/_console/#endpoints/POST /messages")
            page.get_by_test_id("tester-body").fill(
                '{"text": "hello from the browser", "priority": "high"}'
            )
            page.get_by_test_id("tester-send").click()
            expect(page.get_by_test_id("tester-status")).to_contain_text("200")
            expect(page.get_by_test_id("tester-response-body")).to_contain_text("enqueued")
            trace = page.get_by_test_id("tester-trace")
            for name in ("POST /messages", "SendMessage", "ProcessMessage", "NotifyCompletion"):
                expect(trace.locator("tr", has_text=name).first).to_be_visible()
            expect(trace.get_by_test_id("trace-logs")).to_contain_text("Message processed")
            trace_id = page.locator("[data-testid=tester-response] a.trace-link").inner_text()
            seen["trace_id"] = trace_id
            page.screenshot(path=str(shots / "02-endpoint-tester.png"), full_page=True)

            # Live log tail, filtered to the request's trace.
            page.goto(f"{url}/_console/#logs")
            page.locator("input[placeholder='trace id']").fill(trace_id)
            table = page.get_by_test_id("log-table")
            # Only the request's lines: SendMessage, ProcessMessage x2, NotifyCompletion x2.
            expect(table.locator("tbody tr")).to_have_count(5)
            expect(table.locator("tr", has_text="Processing message")).to_be_visible()
            expect(table.locator("tr", has_text="Notification sent")).to_be_visible()
            seen["log_rows"] = table.locator("tbody tr").count()
            page.screenshot(path=str(shots / "03-logs.png"))
            # Every column in view, nothing cut off, on a laptop and a desktop screen.
            page.locator("input[placeholder='trace id']").fill("")
            expect(table.locator("tbody tr").nth(5)).to_be_visible()
            for width in (1024, 1440):
                page.set_viewport_size({"width": width, "height": 800})
                seen[f"log_fit_{width}"] = table.evaluate(FITS_IN_VIEW)
                page.screenshot(path=str(shots / f"03-logs-{width}.png"))
            page.set_viewport_size({"width": 1440, "height": 900})

            # The trace list names the trace by its id's random end (its start is the time).
            page.goto(f"{url}/_console/#traces")
            listed = page.locator(f"tr[data-trace='{trace_id}'] a.trace-link")
            expect(listed).to_have_text(trace_id[-8:])

            # The trace waterfall; a span's details.
            page.goto(f"{url}/_console/#traces/{trace_id}")
            waterfall = page.get_by_test_id("waterfall")
            expect(waterfall.locator("tr")).to_have_count(4)
            waterfall.locator("tr", has_text="SendMessage").click()
            expect(page.locator(".span-detail")).to_contain_text("message.sent")
            expect(page.locator(".span-detail")).to_contain_text("created messages/")
            page.screenshot(path=str(shots / "04-trace.png"), full_page=True)

            # Queues: the seeded dead letter, inspected and re-driven.
            page.goto(f"{url}/_console/#queues")
            letter = page.get_by_test_id("dead-letters").locator(
                "tr[data-dead-letter]", has_text="simulated outage"
            )
            expect(letter).to_be_visible()
            letter.get_by_role("button", name="Inspect").click()
            expect(page.locator("pre.json-view")).to_contain_text("msg-seeded-outage")
            page.screenshot(path=str(shots / "05-dead-letter.png"))
            letter.locator("input[type=checkbox]").check()
            page.get_by_test_id("redrive").click()
            expect(page.get_by_test_id("dl-result")).to_have_text("re-driven: 1")
            expect(page.get_by_test_id("dead-letters")).to_contain_text("No dead letters.")
            page.screenshot(path=str(shots / "06-redriven.png"))

            # State shows the re-driven message processed; cron shows next fire times.
            page.goto(f"{url}/_console/#state/messages")
            items = page.get_by_test_id("state-items")
            expect(items.locator("tr", has_text="msg-seeded-outage")).to_contain_text("processed")
            page.screenshot(path=str(shots / "07-state.png"))
            # Editing state: a bad value is refused in place, a good one saved, a key added
            # and deleted (through the backend, as a handler's write).
            row = items.locator("tr[data-state-key='msg-seeded-outage']")
            row.get_by_test_id("state-edit").click()
            row.get_by_test_id("state-value").fill('{"status": ')
            row.get_by_test_id("state-save").click()
            expect(row.get_by_test_id("state-error")).to_contain_text("Not JSON")
            row.get_by_test_id("state-value").fill('{"status": "archived", "by": "operator"}')
            row.get_by_test_id("state-save").click()
            expect(items.locator("tr[data-state-key='msg-seeded-outage']")).to_contain_text(
                "archived"
            )
            page.get_by_test_id("state-new-key").fill("operator-note")
            page.get_by_test_id("state-value").first.fill('["a", 1]')
            page.get_by_test_id("state-save").first.click()
            note = items.locator("tr[data-state-key='operator-note']")
            expect(note).to_contain_text('"a"')
            page.screenshot(path=str(shots / "07-state-edited.png"))
            note.get_by_test_id("state-delete").click()
            expect(note.get_by_test_id("state-delete")).to_have_text("Confirm delete")
            note.get_by_test_id("state-delete").click()
            expect(items.locator("tr[data-state-key='operator-note']")).to_have_count(0)
            page.goto(f"{url}/_console/#cron")
            expect(
                page.get_by_test_id("cron-table").locator("tr", has_text="CleanupMessages")
            ).to_contain_text("in ")
            page.screenshot(path=str(shots / "08-cron.png"))
        finally:
            browser.close()
    return seen


async def test_console_in_headless_chromium(tmp_path: Path) -> None:
    require_chromium()
    shots = ARTIFACTS
    shots.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "motet.db"
    project = load_project(ROOT)
    steps = load_steps(ROOT / "steps")
    await seed_dead_letter(db, Runtime(steps, backend=SqliteBackend(db), project=project))
    with trio.fail_after(60):
        async with open_runtime(
            steps,
            backend=SqliteBackend(db),
            project=project,
            serve=GatewayOptions(port=0),
            options=RuntimeOptions(log_sink=False),
        ) as runtime:
            url = runtime.gateway_urls[0]
            seen = await trio.to_thread.run_sync(drive_console, url, shots)
            value = await runtime.backend.state_get("messages", SEEDED["messageId"])
            note = await runtime.backend.state_get("messages", "operator-note")
    assert seen["errors"] == []
    for width in (1024, 1440):
        fit = seen[f"log_fit_{width}"]
        assert fit["heads"] == fit["visible"] == 6, (width, fit)
        assert fit["overflow"] <= 0, (width, fit)
    assert note is None
    assert seen["graph_nodes"] >= 7
    assert seen["log_rows"] >= 4
    assert value == {"status": "archived", "by": "operator"}
    assert (tmp_path / "telemetry.db").is_file()
    for name in (
        "01-flows",
        "02-endpoint-tester",
        "03-logs",
        "04-trace",
        "05-dead-letter",
        "06-redriven",
        "07-state",
        "07-state-edited",
        "03-logs-1024",
        "03-logs-1440",
        "08-cron",
    ):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def test_missing_chromium_fails_when_required_and_skips_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tests.console.test_console as module

    monkeypatch.setattr(module, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("MOTET_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="MOTET_REQUIRE_CHROMIUM=1"):
        require_chromium()
    monkeypatch.delenv("MOTET_REQUIRE_CHROMIUM")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        require_chromium()
