"""GET /reports/:reportId: a report GenerateReport built."""

from __future__ import annotations

from typing import Any

from motet import Context, Request, http

config = {
    "name": "GetReport",
    "triggers": [http("GET", "/reports/:reportId")],
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    report = await ctx.state.get("reports", request.path_params["reportId"])
    if report is None:
        return {"status": 404, "body": {"error": "Report not found"}}
    return {"status": 200, "body": report}
