"""The README's time-travel example: a delayed emit under MockClock, through a steps folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from motet.testing import open_test_runtime

STEP = """\
from motet import queue

config = {"name": "SendReminder", "triggers": [queue("reminder.send")]}


async def handler(data, ctx):
    ctx.logger.info("reminder sent", user=data["user"])
"""


async def test_reminder_goes_out_a_day_later(autojump_clock: Any, tmp_path: Path) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "send_reminder_step.py").write_text(STEP)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with open_test_runtime("steps", root=tmp_path, start=start) as app:
        await app.emit("reminder.send", {"user": "u1"}, delay=timedelta(days=1))
        await app.settle()
        assert app.log_messages("SendReminder") == []
        await app.advance(timedelta(days=1))
        await app.settle(fail_fast=True)
        assert app.log_messages("SendReminder") == ["reminder sent"]
        assert app.now() == start + timedelta(days=1)
