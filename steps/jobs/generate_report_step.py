"""Build a user's analytics report from the metrics in state "analytics:<userId>", store it,
and email a link. (The seed does this in Ruby with a PDF; here the report is JSON lines.)"""

from __future__ import annotations

import attrs

from motet import Context


@attrs.frozen
class ReportRequest:
    reportId: str
    userId: str
    email: str


config = {
    "type": "event",
    "name": "GenerateReport",
    "subscribes": ["report.requested"],
    "input": ReportRequest,
    "emits": ["report.generated", "email.send"],
    "flows": ["jobs"],
}


async def handler(request: ReportRequest, ctx: Context) -> None:
    metrics = await ctx.state.get_group(f"analytics:{request.userId}")
    lines = ["Analytics Report", *(f"{m['name']}: {m['value']}" for m in metrics)]
    await ctx.state.set("reports", request.reportId, {"userId": request.userId, "lines": lines})
    url = f"/reports/{request.reportId}"
    await ctx.emit("report.generated", {"reportId": request.reportId, "url": url})
    await ctx.emit(
        "email.send", {"to": request.email, "subject": "Your report is ready", "attachmentUrl": url}
    )
