"""Scripted children for supervisor tests: each run follows the next step of a script
and writes what happened, with the trio time, to a shared journal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from motet.supervision import ChildSpec, RestartType, SupervisorEvent

Action = Callable[[], Awaitable[None]]


class Boom(Exception):
    """The failure scripted children raise."""


@attrs.define
class Journal:
    entries: list[tuple[str, str, float]] = attrs.field(factory=list)
    events: list[SupervisorEvent] = attrs.field(factory=list)

    def write(self, what: str, child: str) -> None:
        self.entries.append((what, child, trio.current_time()))

    def steps(self) -> list[tuple[str, str]]:
        """The entries without their times."""
        return [(what, child) for what, child, _ in self.entries]

    def times(self, what: str, child: str) -> list[float]:
        return [t for w, c, t in self.entries if (w, c) == (what, child)]

    def on_event(self, event: SupervisorEvent) -> None:
        self.events.append(event)

    def event_kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.child) for e in self.events]


def fail(after: float = 1.0, message: str = "boom") -> Action:
    async def action() -> None:
        await trio.sleep(after)
        raise Boom(message)

    return action


def finish(after: float = 1.0) -> Action:
    async def action() -> None:
        await trio.sleep(after)

    return action


def scripted(
    journal: Journal,
    child_id: str,
    *actions: Action,
    restart: RestartType = "permanent",
    shutdown: float = 5.0,
) -> ChildSpec:
    """A child whose n-th run performs `actions[n]` once ready, then runs for ever."""
    remaining = list(actions)

    async def start(*, task_status: trio.TaskStatus[str]) -> None:
        journal.write("start", child_id)
        task_status.started(child_id)
        action = remaining.pop(0) if remaining else trio.sleep_forever
        try:
            await action()
        except trio.Cancelled:
            journal.write("cancelled", child_id)
            raise
        except Boom:
            journal.write("raised", child_id)
            raise
        journal.write("returned", child_id)

    return ChildSpec(child_id, start, restart=restart, shutdown=shutdown)
