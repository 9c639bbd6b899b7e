"""Commands that read or write the project's backend without running its steps."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import trio

from .._clock import WallClock
from .._envelope import Subscription
from ._app import Project

T = TypeVar("T")


def _with_backend(project: Project, spec: str | None,
                  work: Callable[[Any, WallClock], Awaitable[T]]) -> T:
    async def main() -> T:
        backend = project.backend(spec)
        clock = WallClock()
        async with trio.open_nursery() as nursery:
            await nursery.start(backend.run, clock)
            try:
                return await work(backend, clock)
            finally:
                nursery.cancel_scope.cancel()

    return trio.run(main)


def _subscriptions(project: Project) -> list[Subscription]:
    from .._runtime import Runtime
    from ..backends import backend_from_url

    runtime = Runtime(project.steps(), backend=backend_from_url("memory", root=project.root),
                      project=project.config())
    return runtime.subscriptions


def emit_message(project: Project, topic: str, data: Any, *, group: str | None,
                 backend: str | None) -> str:
    from .._envelope import Envelope, new_id

    subscriptions = _subscriptions(project)
    if not any(s.topic == topic for s in subscriptions):
        known = sorted({s.topic for s in subscriptions if ":" not in s.topic})
        raise click.ClickException(f"no step subscribes to topic {topic!r}; "
                         f"subscribed topics: {', '.join(known) or 'none'}")

    async def work(b: Any, clock: WallClock) -> str:
        await b.declare(subscriptions)
        envelope = Envelope(topic=topic, data=data, trace_id=new_id(), group=group,
                            created_at=clock.now())
        await b.publish([envelope])
        return envelope.id

    return _with_backend(project, backend, work)


def list_dead_letters(project: Project, *, step: str | None, backend: str | None,
                      as_json: bool) -> list[str]:
    async def work(b: Any, _clock: WallClock) -> list[Any]:
        return list(await b.dead_letters(None, limit=10_000))

    letters = [d for d in _with_backend(project, backend, work)
               if step is None or d.subscription.startswith(step + "@")]
    if as_json:
        return [json.dumps({"id": d.id, "subscription": d.subscription, "topic": d.envelope.topic,
                            "data": d.envelope.data, "error": d.error, "attempts": d.attempts,
                            "failed_at": d.failed_at, "trace_id": d.envelope.trace_id})
                for d in letters]
    if not letters:
        return ["no dead letters"]
    lines = [f"{'ID':32}  {'SUBSCRIPTION':30}  {'ATTEMPTS':8}  {'FAILED AT':20}  ERROR"]
    for d in letters:
        when = datetime.fromtimestamp(d.failed_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{d.id:32}  {d.subscription:30}  {d.attempts:<8}  {when:20}  {d.error}")
    return lines


def redrive(project: Project, ids: list[str], *, everything: bool, step: str | None,
            backend: str | None) -> int:
    async def work(b: Any, _clock: WallClock) -> int:
        chosen = ids
        if everything:
            chosen = [d.id for d in await b.dead_letters(None, limit=1_000_000)
                      if step is None or d.subscription.startswith(step + "@")]
        return int(await b.redrive(chosen))

    return _with_backend(project, backend, work)


def read_state(project: Project, namespace: str, key: str, *, backend: str | None) -> Any:
    async def work(b: Any, _clock: WallClock) -> Any:
        return await b.state_get(namespace, key)

    return _with_backend(project, backend, work)


def list_state(project: Project, namespace: str | None, *, backend: str | None) -> list[str]:
    async def work(b: Any, _clock: WallClock) -> list[str]:
        if namespace is None:
            return list(await b.state_groups())
        return [f"{key}\t{json.dumps(value, ensure_ascii=False)}"
                for key, value in await b.state_list(namespace)]

    return _with_backend(project, backend, work)
