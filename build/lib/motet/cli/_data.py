"""Commands that read or write the project's backend without running its steps."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import trio

from .._clock import WallClock
from ._app import Project, UserError

T = TypeVar("T")


def _with_backend(
    project: Project, spec: str | None, work: Callable[[Any, WallClock], Awaitable[T]]
) -> T:
    backend = project.backend(spec)

    async def main() -> T:
        clock = WallClock()
        result: list[T] = []
        failure: list[Exception] = []
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.run, clock)
            try:
                result.append(await work(backend, clock))
            except Exception as exc:
                # Raised here, it would leave the nursery wrapped in an exception group.
                failure.append(exc)
            nursery.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return result[0]

    return trio.run(main)


def emit_message(
    project: Project, topic: str, data: Any, *, group: str | None, backend: str | None
) -> str:
    """Publish `data` on `topic`; refused (UserError) when no step subscribes to the topic or
    when the data does not match a subscriber's `input` schema, since such a message could
    only go to the dead letters."""
    from .._envelope import Envelope, new_id
    from .._errors import InputValidationError
    from .._plan import plan
    from ..steps import QueueTrigger, make_converter, validate

    steps = project.steps()
    subscriptions = plan(steps, project.config()).subscriptions
    if topic.startswith(("cron:", "state:")):
        raise UserError(
            f"topic {topic!r} is internal to motet (cron ticks and state "
            "changes); emit on a topic a queue step subscribes to"
        )
    if not any(s.topic == topic for s in subscriptions):
        known = sorted({s.topic for s in subscriptions if ":" not in s.topic})
        raise UserError(
            f"no step subscribes to topic {topic!r}; "
            f"subscribed topics: {', '.join(known) or 'none'}"
        )
    converter = make_converter()
    for step in steps:
        for trigger in step.of_type(QueueTrigger):
            if trigger.topic != topic or trigger.input is None:
                continue
            try:
                validate(converter, data, trigger.input)
            except InputValidationError as exc:
                where = f" ({step.file})" if step.file else ""
                raise UserError(
                    f"data does not match the input of step {step.name!r}"
                    f"{where}: {'; '.join(exc.messages)}"
                ) from exc

    async def work(b: Any, clock: WallClock) -> str:
        await b.declare(subscriptions)
        envelope = Envelope(
            topic=topic, data=data, trace_id=new_id(), group=group, created_at=clock.now()
        )
        await b.publish([envelope])
        return envelope.id

    return _with_backend(project, backend, work)


def list_dead_letters(
    project: Project, *, step: str | None, backend: str | None, as_json: bool
) -> list[str]:
    async def work(b: Any, _clock: WallClock) -> list[Any]:
        return list(await b.dead_letters(None, limit=10_000))

    letters = [
        d
        for d in _with_backend(project, backend, work)
        if step is None or d.subscription.startswith(step + "@")
    ]
    if as_json:
        return [json.dumps(_letter_json(d)) for d in letters]
    if not letters:
        return ["no dead letters"]
    rows = [("ID", "SUBSCRIPTION", "ATTEMPTS", "FAILED AT", "ERROR")]
    rows += [
        (d.id, d.subscription, str(d.attempts), _when(d.failed_at), _first_line(d.error))
        for d in letters
    ]
    # Each column as wide as its widest cell, so a long step name shifts the columns
    # after it instead of pushing one row out of line.
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(f"{cell:{w}}" for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]


def show_dead_letter(
    project: Project, letter_id: str, *, backend: str | None, as_json: bool
) -> list[str]:
    """One dead letter in full: where it was, what it carried, why it failed (with the last
    attempt's traceback) and how to re-drive it."""

    async def work(b: Any, _clock: WallClock) -> list[Any]:
        return list(await b.dead_letters(None, limit=1_000_000))

    found = [d for d in _with_backend(project, backend, work) if d.id == letter_id]
    if not found:
        raise UserError(f"no dead letter with id {letter_id}; `motet dlq list` shows the ids")
    [d] = found
    if as_json:
        return [json.dumps(_letter_json(d), indent=2, ensure_ascii=False)]
    envelope = d.envelope
    rows = [
        ("id", d.id),
        ("subscription", d.subscription),
        ("topic", envelope.topic),
        ("message id", envelope.id),
        ("trace id", envelope.trace_id),
        *([("group", envelope.group)] if envelope.group is not None else []),
        ("attempts", str(d.attempts)),
        ("failed at", _when(d.failed_at) + " UTC"),
        ("error", d.error),
    ]
    # A value of several lines (an error message with newlines) keeps its column.
    lines = [f"{name + ':':14}{value}".replace("\n", "\n" + " " * 14) for name, value in rows]
    lines = "\n".join(lines).splitlines()
    lines.append("data:")
    lines += _indented(json.dumps(envelope.data, indent=2, ensure_ascii=False))
    if d.traceback:
        lines.append("traceback:")
        lines += _indented(d.traceback)
    else:
        lines.append(
            "traceback:    none (no attempt raised: the input was invalid, or every "
            "delivery lost its process)"
        )
    lines.append(f"re-drive it:  motet dlq redrive {d.id}")
    return lines


def _letter_json(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription": d.subscription,
        "topic": d.envelope.topic,
        "message_id": d.envelope.id,
        "data": d.envelope.data,
        "error": d.error,
        "attempts": d.attempts,
        "failed_at": d.failed_at,
        "trace_id": d.envelope.trace_id,
        "group": d.envelope.group,
        "traceback": d.traceback,
    }


def _first_line(text: str) -> str:
    """One row per letter: a multi-line error shows its first line (`dlq show` has all)."""
    first, _, rest = text.partition("\n")
    return first + " [...]" if rest.strip() else first


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _indented(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]


def redrive(
    project: Project, ids: list[str], *, everything: bool, step: str | None, backend: str | None
) -> int:
    """Put dead letters back in their queue; returns how many."""
    return _settle_letters(project, ids, everything, step, backend, "redrive")


def discard(
    project: Project, ids: list[str], *, everything: bool, step: str | None, backend: str | None
) -> int:
    """Delete dead letters for good; returns how many."""
    return _settle_letters(project, ids, everything, step, backend, "discard")


def _settle_letters(
    project: Project,
    ids: list[str],
    everything: bool,
    step: str | None,
    backend: str | None,
    how: str,
) -> int:
    async def work(b: Any, _clock: WallClock) -> int:
        letters = await b.dead_letters(None, limit=1_000_000)
        if everything:
            chosen = [
                d.id for d in letters if step is None or d.subscription.startswith(step + "@")
            ]
        else:
            known = {d.id for d in letters}
            missing = [i for i in ids if i not in known]
            if missing:
                raise UserError(
                    f"no dead letter with id {', '.join(missing)}; `motet dlq list` shows the ids"
                )
            chosen = ids
        return int(await getattr(b, how)(chosen)) if chosen else 0

    return _with_backend(project, backend, work)


def read_state(project: Project, namespace: str, key: str, *, backend: str | None) -> Any:
    async def work(b: Any, _clock: WallClock) -> Any:
        return await b.state_get(namespace, key)

    return _with_backend(project, backend, work)


def list_state(project: Project, namespace: str | None, *, backend: str | None) -> list[str]:
    async def work(b: Any, _clock: WallClock) -> list[str]:
        if namespace is None:
            return list(await b.state_groups())
        return [
            f"{key}\t{json.dumps(value, ensure_ascii=False)}"
            for key, value in await b.state_list(namespace)
        ]

    return _with_backend(project, backend, work)
