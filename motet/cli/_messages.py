"""`motet message ID` and `motet message cancel ID`: a message's status, read from the
project's backend (no runtime needed), and its cancellation.

A cancel from here reaches a handler running in a server process through that process's
lease keeper, which checks for cancellations every third of the lease.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .._clock import WallClock
from .._status import DeliveryStatus, MessageStatus, Records, check_message_id, status_json
from ._app import Project, UserError
from ._data import _with_backend


def _checked(message_id: str) -> str:
    try:
        return check_message_id(message_id)
    except ValueError as exc:
        raise UserError(f"{exc}; pass the id `motet emit` (or emit) returned") from None


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def show_message(
    project: Project, message_id: str, *, backend: str | None, as_json: bool
) -> list[str]:
    """The lines `motet message ID` prints; UserError when the id is unknown."""
    message_id = _checked(message_id)

    async def work(b: Any, _clock: WallClock) -> MessageStatus | None:
        status: MessageStatus | None = await b.message_status(message_id)
        return status

    status = _with_backend(project, backend, work)
    if status is None:
        retention = project.config().message_retention
        raise UserError(
            f"no message {message_id} is known: never emitted to this backend, or settled "
            f"longer ago than message_retention ({retention:g} s)"
        )
    if as_json:
        return [json.dumps(status_json(status), indent=2, ensure_ascii=False)]
    lines = [f"message {status.id}  topic {status.topic or '?'}  state {status.state}"]
    for delivery in status.deliveries:
        lines += _delivery_lines(delivery)
    return lines


def _delivery_lines(d: DeliveryStatus) -> list[str]:
    lines = [f"  {d.subscription}: {d.state}, attempts {d.attempts}"]
    times = [
        ("enqueued", d.enqueued_at),
        ("started", d.started_at),
        ("finished", d.finished_at),
        ("next try" if d.attempts else "due", d.due_at),  # a delayed emit's first run: due
    ]
    shown = "  ".join(f"{name} {_when(t)}" for name, t in times if t is not None)
    if shown:
        lines.append(f"    {shown}")
    if d.error:
        lines.append(f"    error: {d.error}")
    if d.traceback:
        lines += ["    " + line for line in d.traceback.rstrip().splitlines()]
    if d.result is not None:
        lines.append(f"    result: {json.dumps(d.result, ensure_ascii=False)}")
    if d.result_note:
        lines.append(f"    result not kept: {d.result_note}")
    if d.dead_letter_id:
        lines.append(f"    dead letter {d.dead_letter_id} (motet dlq show {d.dead_letter_id})")
    return lines


def cancel_message(project: Project, message_id: str, *, backend: str | None) -> str:
    """Cancel the message; the line to print. UserError when nothing was cancelled."""
    message_id = _checked(message_id)
    records = Records(retention=project.config().message_retention)

    async def work(b: Any, clock: WallClock) -> Any:
        return await b.cancel(message_id, keep_until=records.cancel_keep_until(clock.now()))

    outcome = _with_backend(project, backend, work)
    if not outcome.any:
        raise UserError(outcome.describe(message_id))
    line = outcome.describe(message_id)
    if outcome.running:
        line += "; the instance running it stops the handler within a third of its lease"
    return line
