"""A background worker: a queue trigger with a TypedDict input, storing into state."""

from __future__ import annotations

from typing import TypedDict

from motet import Context


class Greeting(TypedDict):
    timestamp: str
    appName: str
    greetingPrefix: str
    requestId: str


config = {
    "name": "ProcessGreeting",
    "description": "Processes greeting in the background",
    "triggers": [{"type": "queue", "topic": "process-greeting", "input": Greeting}],
    "enqueues": [],
    "flows": ["hello-world-flow"],
}


async def handler(greeting: Greeting, ctx: Context) -> None:
    ctx.logger.info(
        "Processing greeting", requestId=greeting["requestId"], appName=greeting["appName"]
    )
    text = f"{greeting['greetingPrefix']} {greeting['appName']}!"
    await ctx.state.set(
        "greetings",
        greeting["requestId"],
        {
            "greeting": text,
            "processedAt": ctx.now().isoformat(),
            "originalTimestamp": greeting["timestamp"],
        },
    )
    ctx.logger.info(
        "Greeting processed successfully",
        requestId=greeting["requestId"],
        greeting=text,
        storedInState=True,
    )
