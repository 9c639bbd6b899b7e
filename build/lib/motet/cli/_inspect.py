"""`motet steps` and `motet graph`: what a project's steps are and how they connect."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..steps._model import CronTrigger, HttpTrigger, QueueTrigger, StateTrigger, Step


def describe_trigger(trigger: object) -> str:
    if isinstance(trigger, HttpTrigger):
        return f"http {trigger.method} {trigger.path}"
    if isinstance(trigger, QueueTrigger):
        return f"queue {trigger.topic}"
    if isinstance(trigger, CronTrigger):
        tz = f" ({trigger.timezone})" if trigger.timezone else ""
        return f"cron {trigger.expression}{tz}"
    if isinstance(trigger, StateTrigger):
        where = f" where {dict(trigger.filter)}" if trigger.filter else ""
        return f"state {trigger.namespace}{where}"
    return repr(trigger)


def steps_table(steps: Sequence[Step]) -> str:
    rows = [("STEP", "TRIGGERS", "EMITS", "FLOWS", "FILE")]
    for step in sorted(steps, key=lambda s: s.name):
        rows.append(
            (
                step.name,
                "; ".join(describe_trigger(t) for t in step.triggers) or "noop",
                ", ".join(step.enqueues) or "-",
                ", ".join(step.flows) or "-",
                step.file.name if step.file else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def project_warnings(project: Any, steps: Sequence[Step], steps_dir: str | None) -> list[str]:
    """The warnings `motet start` logs at start (`Runtime.start_warnings`), for these steps
    under the project's config, without running anything."""
    from .._plan import plan
    from ..steps._checks import start_warnings

    config = project.config()
    folder = project.root / (steps_dir or config.steps)
    return start_warnings(steps, plan(steps, config).subscriptions, folder, config.steps_dir)


def _node(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _label(text: str) -> str:
    return text.replace('"', "'")


def mermaid(steps: Sequence[Step]) -> str:
    """A Mermaid flowchart: steps grouped by flow, edges labelled by topic."""
    lines = ["flowchart LR"]
    by_flow: dict[str, list[Step]] = defaultdict(list)
    for step in steps:
        by_flow[step.flows[0] if step.flows else ""].append(step)
    for flow, members in sorted(by_flow.items()):
        indent = "    "
        if flow:
            lines.append(f'    subgraph {_node("flow_" + flow)}["{_label(flow)}"]')
            indent = "        "
        for step in sorted(members, key=lambda s: s.name):
            details = [
                describe_trigger(t) for t in step.triggers if not isinstance(t, QueueTrigger)
            ]
            text = "<br/>".join([step.name, *details])
            lines.append(f'{indent}{_node(step.name)}["{_label(text)}"]')
        if flow:
            lines.append("    end")
    subscribers: dict[str, list[str]] = defaultdict(list)
    for step in steps:
        for trigger in step.triggers:
            if isinstance(trigger, QueueTrigger):
                subscribers[trigger.topic].append(step.name)
        for topic in step.virtual_subscribes:
            subscribers[topic].append(step.name)
    for step in sorted(steps, key=lambda s: s.name):
        for topic in (*step.enqueues, *step.virtual_emits):
            targets = subscribers.get(topic)
            if not targets:
                orphan = f'{_node("topic_" + topic)}(("{_label(topic)}"))'
                lines.append(f'    {_node(step.name)} -- "{_label(topic)}" --> {orphan}')
                continue
            for target in targets:
                lines.append(f'    {_node(step.name)} -- "{_label(topic)}" --> {_node(target)}')
    return "\n".join(lines)
