"""Which state-change events a state trigger's step wants.

Two checks, of different owners. `state_filter` is motet's: the event kind and the trigger's
`filter` (equality on fields of the new value); it cannot fail. `state_condition` is the
user's `condition`: user code like a handler, so the step actor runs it per delivery and a
raise is a failed attempt of that delivery (retried, then dead-lettered), never a crash of
the actor. A condition reading `event["value"]["status"]` raises on a delete (value None).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..steps._handlers import condition_wants_ctx
from ..steps._model import StateTrigger

Condition = Callable[[Any, Any], Awaitable[bool]]  # (input, ctx) -> the event is wanted


def state_filter(trigger: StateTrigger) -> Callable[[Any], bool]:
    """Whether a change event is of the trigger's kinds and matches its `filter`."""
    wanted: Mapping[str, Any] = trigger.filter or {}
    events = set(trigger.events)

    def accept(event: Any) -> bool:
        if not isinstance(event, Mapping) or event.get("event") not in events:
            return False
        if wanted:
            value = event.get("value")
            if not isinstance(value, Mapping):
                return False
            if any(value.get(k) != v for k, v in wanted.items()):
                return False
        return True

    return accept


def state_condition(trigger: StateTrigger) -> Condition | None:
    """The trigger's `condition` as the actor calls it: `condition(input)` or Motia's
    `condition(input, ctx)` (told apart once, by its signature), sync or async. Raises
    what the condition raises."""
    condition = trigger.condition
    if condition is None:
        return None
    wants_ctx = condition_wants_ctx(condition)

    async def check(payload: Any, ctx: Any) -> bool:
        result = condition(payload, ctx) if wants_ctx else condition(payload)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    return check
