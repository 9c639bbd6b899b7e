"""Cancellation across 3 real `motet start` processes on one redis-server: `motet message
cancel` in a separate process stops a handler running in one of the instances (its lease
keeper sees the cancel mark), and the message ends cancelled, never retried."""

from __future__ import annotations

import json

from ..crash._motet import wait_until
from ._cluster import StartCluster
from ._steps import PUBLISH

HANG = """\
import trio

from motet import queue

from steps.record import record

config = {"name": "Hang", "triggers": [queue("slow")]}


async def handler(message, ctx):
    record(kind="start", id=ctx.message.id, attempt=ctx.message.attempt)
    try:
        await trio.sleep(3600)
    except trio.Cancelled:
        record(kind="cancelled", id=ctx.message.id)
        raise
"""

# A short lease: the lease keepers look for cancellations every third of it (1 s).
TOML = '[queues."slow"]\nlease = 3\n'


def test_a_cancel_from_the_cli_stops_the_handler_on_the_instance_running_it(
    cluster: StartCluster,
) -> None:
    app = cluster({"publish_step.py": PUBLISH, "hang_step.py": HANG}, toml=TOML)
    emitted = app.cli("emit", "slow", '{"id": "h1"}')
    assert emitted.returncode == 0, emitted.stderr
    message_id = emitted.stdout.strip()
    [started] = wait_until(lambda: app.handled("start"), "the handler to start")
    assert started["id"] == message_id

    running = json.loads(app.cli("message", message_id, "--json").stdout)
    assert [d["state"] for d in running["deliveries"]] == ["running"]
    cancel = app.cli("message", "cancel", message_id)
    assert cancel.returncode == 0, cancel.stderr
    assert f"message {message_id} cancelled for Hang@slow" in cancel.stdout
    [stopped] = wait_until(lambda: app.handled("cancelled"), "the handler to be cancelled")
    assert stopped["pid"] == started["pid"]  # the instance that ran it stopped it

    status = json.loads(app.cli("message", message_id, "--json").stdout)
    assert status["state"] == "cancelled" and status["deliveries"][0]["attempts"] == 1
    again = app.cli("message", "cancel", message_id)
    assert again.returncode == 2 and "already over" in again.stderr
    assert app.stop() == [0, 0, 0], app.output()
    assert len(app.handled("start")) == 1  # never retried
    assert app.dead_letters() == []
