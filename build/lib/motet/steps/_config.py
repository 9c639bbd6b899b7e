"""A step's config dict, in either form, -> the frozen `Step`.

    0.x   {"type": "api" | "event" | "cron" | "noop", "name", "method", "path",
           "subscribes", "emits", "cron", "bodySchema", "input", ...}
    1.0   {"name", "triggers": [http(...), queue(...), {"type": "cron", ...}], "enqueues"}

Both forms produce the same triggers; everything after that (emits, flows, the handler
check) is shared. The name is read first so every later error can name the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _fields as f
from ._fields import Where
from ._handlers import check_handler, noop_handler
from ._model import QueueTrigger, StateTrigger, Step, Trigger
from ._queue_options import QUEUE_OPTION_KEYS
from ._triggers import (
    CRON_KEYS,
    HTTP_KEYS,
    build_cron,
    build_http,
    queue_options,
    trigger_from_dict,
)

__all__ = ["step_from_config"]

COMMON_KEYS = (
    "name",
    "description",
    "flows",
    "emits",
    "enqueues",
    "virtualEmits",
    "virtual_emits",
    "virtualSubscribes",
    "virtual_subscribes",
)
V0_KEYS: dict[str, tuple[str, ...]] = {
    "api": ("type", *COMMON_KEYS, *HTTP_KEYS),
    "event": ("type", *COMMON_KEYS, "subscribes", "input", *QUEUE_OPTION_KEYS),
    "cron": ("type", *COMMON_KEYS, *CRON_KEYS),
    "noop": ("type", *COMMON_KEYS),
}
V1_KEYS = ("triggers", *COMMON_KEYS)
EMIT_KEYS = ("topic", "label", "conditional")


def step_from_config(config: Any, handler: Any, *, file: Path | None = None) -> Step:
    """Validate `config` and `handler` together; raise StepDefinitionError naming the field."""
    where = Where(file=file)
    if not isinstance(config, Mapping):
        where.fail(f"config must be a dict, got {type(config).__name__}", "config")
    where = Where(file=file, step=_name(where, config.get("name")))
    if "type" in config and "triggers" in config:
        where.fail("has both 'type' (0.x form) and 'triggers' (1.0 form); use one", "triggers")
    if "type" in config:
        triggers = _v0_triggers(where, config)
    elif "triggers" in config:
        f.reject_unknown(where, config, V1_KEYS, "a step config")
        triggers = _v1_triggers(where, config["triggers"])
    else:
        where.fail(
            "the config has no 'triggers' (1.0 form) and no 'type' (0.x form: "
            "'api', 'event', 'cron' or 'noop')",
            "triggers",
        )
    _reject_double_subscriptions(where, triggers)
    if handler is None and config.get("type") == "noop":
        handler = noop_handler
    check_handler(handler, triggers, where)
    emits_key, emits = f.pick(where, config, "enqueues", "emits")
    _, virtual_emits = f.pick(where, config, "virtualEmits", "virtual_emits")
    vs_key, virtual_subscribes = f.pick(where, config, "virtualSubscribes", "virtual_subscribes")
    description = config.get("description")
    if description is not None and not isinstance(description, str):
        where.fail(f"expected a string, got {description!r:.60}", "description")
    flows = config.get("flows")
    return Step(
        name=where.step or "",
        triggers=triggers,
        handler=handler,
        enqueues=_emits(where, emits_key or "enqueues", emits),
        flows=() if flows is None else f.string_list(where, "flows", flows),
        description=description or "",
        file=file,
        virtual_subscribes=_emits(where, vs_key or "virtualSubscribes", virtual_subscribes),
        virtual_emits=_emits(where, "virtualEmits", virtual_emits),
    )


def _name(where: Where, name: Any) -> str:
    if name is None:
        where.fail("the config has no 'name'; every step needs a unique name", "name")
    if not isinstance(name, str) or not name.strip():
        where.fail(f"expected a non-empty string, got {name!r}", "name")
    if name != name.strip() or "@" in name or any(not c.isprintable() for c in name):
        where.fail(
            f"step name {name!r} must not contain '@', control characters, "
            "or leading/trailing spaces",
            "name",
        )
    return name


def _v0_triggers(where: Where, config: Mapping[str, Any]) -> tuple[Trigger, ...]:
    kind = config["type"]
    if not isinstance(kind, str) or kind not in V0_KEYS:
        hint = {"http": "api", "queue": "event"}.get(kind) if isinstance(kind, str) else None
        where.fail(
            f"unknown step type {kind!r}; expected one of {list(V0_KEYS)}"
            + (f" (did you mean {hint!r}? {kind!r} is a 1.0 trigger type)" if hint else ""),
            "type",
        )
    f.reject_unknown(where, config, V0_KEYS[kind], f"a 0.x {kind!r} step config")
    if kind == "api":
        return (build_http({k: v for k, v in config.items() if k in HTTP_KEYS}, where),)
    if kind == "cron":
        raw = {k: v for k, v in config.items() if k in CRON_KEYS}
        return (build_cron(raw, where, expression_key="cron"),)
    if kind == "noop":
        return ()
    subscribes = config.get("subscribes")
    if subscribes is None:
        where.fail("an 'event' step needs 'subscribes', a list of topics", "subscribes")
    topics = f.string_list(where, "subscribes", subscribes, topics=True)
    if not topics:
        where.fail("an 'event' step needs at least one topic in 'subscribes'", "subscribes")
    schema = f.schema(where, "input", config.get("input"))
    options = queue_options(where, config)
    return tuple(QueueTrigger(topic=t, input=schema, options=options) for t in topics)


def _v1_triggers(where: Where, triggers: Any) -> tuple[Trigger, ...]:
    if isinstance(triggers, Mapping) or not isinstance(triggers, list | tuple):
        where.fail(f"expected a list of triggers, got {triggers!r:.60}", "triggers")
    if not triggers:
        where.fail(
            "the step has no triggers (a graph-only step is 0.x {'type': 'noop'})", "triggers"
        )
    return tuple(trigger_from_dict(t, where.at(f"triggers[{i}]")) for i, t in enumerate(triggers))


def _reject_double_subscriptions(where: Where, triggers: tuple[Trigger, ...]) -> None:
    # One queue per (topic, step): the same topic twice in one step would share it.
    seen: set[str] = set()
    for t in triggers:
        if isinstance(t, QueueTrigger | StateTrigger):
            key = f"queue {t.topic!r}" if isinstance(t, QueueTrigger) else f"state {t.namespace!r}"
            if key in seen:
                where.fail(f"the step subscribes to {key} twice", "triggers")
            seen.add(key)


def _emits(where: Where, field: str, value: Any) -> tuple[str, ...]:
    """Topics as strings or Motia's `{"topic", "label", "conditional"}` dicts (the label and
    condition only annotate graphs), without duplicates, in order."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        where.fail(f"expected a list of topics, got {value!r:.60}", field)
    topics: list[str] = []
    for i, item in enumerate(value):
        at = f"{field}[{i}]"
        if isinstance(item, Mapping):
            f.reject_unknown(where.at(at), item, EMIT_KEYS, "an emits entry")
            item = item.get("topic")
            at += ".topic"
        topics.append(f.topic(where, at, item))
    return tuple(dict.fromkeys(topics))
