"""GET /: the demo page (page.html beside this folder), which uploads a video and follows its
progress with an EventSource on /_streams/videoProgress/{videoId}."""

from __future__ import annotations

from pathlib import Path

from motet import Context, Request, http

PAGE = (Path(__file__).resolve().parent.parent / "page.html").read_text(encoding="utf-8")

config = {"name": "ProgressPage", "triggers": [http("GET", "/")]}


async def handler(request: Request, ctx: Context) -> dict[str, object]:
    return {"status": 200, "body": PAGE, "headers": {"content-type": "text/html; charset=utf-8"}}
