"""Which state-change events a state trigger's step wants.

Two checks, of different owners. `state_filter` is motet's: the event kind and the trigger's
`filter` (equality on fields of the new value); it cannot fail. The trigger's `condition` is
the user's, as on every trigger type (`Dispatcher.wanted`): user code like a handler, so the
step actor runs it per delivery and a raise is a failed attempt of that delivery (retried,
then dead-lettered), never a crash of the actor. A condition reading
`event["value"]["status"]` raises on a delete (value None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

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
