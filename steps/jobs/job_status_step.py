"""GET /jobs/:jobId: the status a background job keeps in state "jobs"."""

from __future__ import annotations

from typing import Any

from motet import Context, Request

config = {
    "type": "api",
    "name": "JobStatus",
    "method": "GET",
    "path": "/jobs/:jobId",
    "flows": ["jobs"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    job = await ctx.state.get("jobs", request.path_params["jobId"])
    if job is None:
        return {"status": 404, "body": {"error": "Job not found"}}
    return {"status": 200, "body": job}
