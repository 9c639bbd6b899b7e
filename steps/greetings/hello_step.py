"""GET /hello?name=...: answer at once, build the greeting in the background."""

from __future__ import annotations

import uuid
from typing import Any

from motet import Context, Request, http

config = {
    "name": "HelloWorld",
    "description": "Say hello and enqueue the greeting for background processing",
    "triggers": [http("GET", "/hello")],
    "enqueues": ["process-greeting"],
    "flows": ["hello-world-flow"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    name = request.query.get("name", "motet")
    if isinstance(name, list):  # ?name=a&name=b
        name = name[-1]
    request_id = str(uuid.uuid4())
    await ctx.enqueue(
        "process-greeting",
        {
            "timestamp": ctx.now().isoformat(),
            "appName": name,
            "greetingPrefix": "Hello",
            "requestId": request_id,
        },
    )
    return {"status": 200, "body": {"message": f"Hello {name}!", "requestId": request_id}}
