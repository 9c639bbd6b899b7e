"""Step files of the projects the cluster tests run. Each test picks the steps it needs.

Every handler records what it did through `steps/record.py` (tests/crash/_motet.py): one
JSON line with the handling process's pid, appended to `records.jsonl` in one `os.write`,
so the lines of 3 processes interleave whole and in the order they happened, and a line
is on disk before the handler returns (before its ack).
"""

from __future__ import annotations

# Every topic an HTTP request may publish on. A topic nobody subscribes to in a given
# project is simply never posted to.
TOPICS = ("fan", "slow", "flow", "picky", "ordered")

PUBLISH = f'''\
from motet import http

config = {{"name": "Publish", "triggers": [http("POST", "/publish/:topic")],
          "enqueues": {list(TOPICS)!r}}}


async def handler(request, ctx):
    """202 once the message is durable in Redis (ctx.emit returns then)."""
    body = request.body
    await ctx.emit(request.path_params["topic"], body, group=body.get("group"))
    return {{"status": 202, "body": {{"id": body["id"]}}}}
'''


def _fan(name: str) -> str:
    return f'''\
import trio

from motet import queue

from steps.record import record

config = {{"name": "{name}", "triggers": [queue("fan")]}}


async def handler(message, ctx):
    record(kind="fan", step="{name}", id=message["id"], attempt=ctx.message.attempt)
    await trio.sleep(0.005)  # a little work, so one instance cannot take everything
'''


SLOW = """\
import random

import trio

from motet import queue

from steps.record import record

config = {"name": "Slow", "triggers": [queue("slow")]}


async def handler(message, ctx):
    record(kind="start", id=message["id"], attempt=ctx.message.attempt)
    # Handlers started together end apart: an instance is seldom between two batches.
    await trio.sleep(random.uniform(0.2, 0.3))
    record(kind="done", id=message["id"], attempt=ctx.message.attempt)
"""

FLOW = """\
import trio

from motet import queue

from steps.record import record

config = {"name": "Flow", "triggers": [queue("flow")]}


async def handler(message, ctx):
    record(kind="flow", id=message["id"], attempt=ctx.message.attempt)
    await trio.sleep(0.005)
"""

PICKY = """\
from motet import queue

from steps.record import record

config = {"name": "Picky", "triggers": [queue("picky")]}


async def handler(message, ctx):
    record(kind="picky", id=message["id"], attempt=ctx.message.attempt)
    if message.get("poison"):
        raise ValueError(f"poison pill {message['id']}")
"""

ORDERED = """\
import random

import trio

from motet import queue

from steps.record import record

config = {"name": "Ordered", "triggers": [queue("ordered")]}


async def handler(message, ctx):
    attempt = ctx.message.attempt
    if message.get("fail_once") and attempt == 1:
        record(kind="ordered-failed", group=message["group"], seq=message["seq"])
        raise RuntimeError("first attempt fails: later messages of the group must wait")
    # Random work, so that without fifo a later message would often finish first.
    await trio.sleep(random.uniform(0.0, 0.01))
    record(kind="ordered", id=message["id"], group=message["group"], seq=message["seq"],
           group_of_delivery=ctx.message.group, attempt=attempt)
"""

TICK = """\
from motet import cron

from steps.record import record

config = {"name": "Tick", "triggers": [cron("* * * * * *")]}


async def handler(_input, ctx):  # a cron handler's input is None; the tick is ctx.tick
    record(kind="tick", scheduled=ctx.tick["scheduled"])
"""

FAN_OUT = {"publish_step.py": PUBLISH, "fan_a_step.py": _fan("FanA"), "fan_b_step.py": _fan("FanB")}
RECLAIM = {"publish_step.py": PUBLISH, "slow_step.py": SLOW}
RESTART = {"publish_step.py": PUBLISH, "flow_step.py": FLOW}
POISON = {"publish_step.py": PUBLISH, "picky_step.py": PICKY}
FIFO = {"publish_step.py": PUBLISH, "ordered_step.py": ORDERED}
CRON = {"tick_step.py": TICK}
