"""The flows graph the console draws: steps, the topics between them, HTTP routes, cron
schedules and state namespaces as nodes, laid out in layers (sources on the left).

The layout is computed here (pure, tested) and drawn by the console in SVG: longest-path
layering over the graph with cycles broken depth-first, then two barycenter sweeps to
reduce crossings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..steps._model import CronTrigger, HttpTrigger, QueueTrigger, StateTrigger, Step


def _add_node(
    nodes: dict[str, dict[str, Any]], node_id: str, kind: str, label: str, detail: str = ""
) -> None:
    if node_id not in nodes:
        nodes[node_id] = {"id": node_id, "kind": kind, "label": label, "detail": detail}


def _graph(
    steps: Sequence[Step], dead_letter_queues: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    subscribers: dict[str, list[str]] = defaultdict(list)
    virtual_subscribers: dict[str, list[str]] = defaultdict(list)
    for step in steps:
        kinds: list[str] = sorted({t.type for t in step.triggers})
        _add_node(nodes, f"step:{step.name}", "step", step.name, ", ".join(kinds) or "noop")
        nodes[f"step:{step.name}"]["description"] = step.description
        nodes[f"step:{step.name}"]["flows"] = list(step.flows)
        for trigger in step.triggers:
            if isinstance(trigger, QueueTrigger):
                subscribers[trigger.topic].append(step.name)
            elif isinstance(trigger, HttpTrigger):
                route = f"{trigger.method} {trigger.path}"
                _add_node(nodes, f"route:{route}", "route", route)
                edges.append({"from": f"route:{route}", "to": f"step:{step.name}", "label": ""})
            elif isinstance(trigger, CronTrigger):
                tz = f" {trigger.timezone}" if trigger.timezone else ""
                node = f"cron:{step.name}:{trigger.expression}"
                _add_node(nodes, node, "cron", trigger.expression + tz)
                edges.append({"from": node, "to": f"step:{step.name}", "label": ""})
            elif isinstance(trigger, StateTrigger):
                node = f"state:{trigger.namespace}"
                _add_node(nodes, node, "state", f"state {trigger.namespace}")
                label = ", ".join(f"{k}={v}" for k, v in (trigger.filter or {}).items())
                edges.append({"from": node, "to": f"step:{step.name}", "label": label})
        for topic in step.virtual_subscribes:
            virtual_subscribers[topic].append(step.name)
    for step in steps:
        for topic, virtual in [
            *((t, False) for t in step.enqueues),
            *((t, True) for t in step.virtual_emits),
        ]:
            targets = [(s, False) for s in subscribers.get(topic, ())]
            targets += [(s, True) for s in virtual_subscribers.get(topic, ())]
            if not targets:
                _add_node(nodes, f"topic:{topic}", "topic", topic)
                edges.append(
                    {
                        "from": f"step:{step.name}",
                        "to": f"topic:{topic}",
                        "label": topic,
                        "virtual": virtual,
                    }
                )
            for target, target_virtual in targets:
                edges.append(
                    {
                        "from": f"step:{step.name}",
                        "to": f"step:{target}",
                        "label": topic,
                        "virtual": virtual or target_virtual,
                    }
                )
        dlq = dead_letter_queues.get(step.name)
        for target in subscribers.get(dlq, ()) if dlq else ():
            edges.append(
                {
                    "from": f"step:{step.name}",
                    "to": f"step:{target}",
                    "label": f"dead letters: {dlq}",
                    "virtual": True,
                }
            )
    return nodes, edges


def _layers(nodes: dict[str, dict[str, Any]], edges: list[dict[str, Any]]) -> None:
    out: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        out[edge["from"]].append(edge["to"])
    # Depth-first search marks back edges; layering ignores them, so cycles still lay out.
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()

    def visit(start: str) -> None:
        stack = [(start, iter(out[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(out[child])))

    for node_id in nodes:
        if node_id not in state:
            visit(node_id)
    forward = [(e["from"], e["to"]) for e in edges if (e["from"], e["to"]) not in back]
    layer = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        changed = False
        for a, b in forward:
            if layer[b] < layer[a] + 1:
                layer[b] = layer[a] + 1
                changed = True
        if not changed:
            break
    by_layer: dict[int, list[str]] = defaultdict(list)
    for node_id in nodes:
        by_layer[layer[node_id]].append(node_id)
    preds: dict[str, list[str]] = defaultdict(list)
    for a, b in forward:
        preds[b].append(a)
    position = {n: i for members in by_layer.values() for i, n in enumerate(members)}
    for _ in range(2):
        for depth in sorted(by_layer):
            members = by_layer[depth]

            def center(n: str) -> float:
                ps = preds.get(n)
                return sum(position[p] for p in ps) / len(ps) if ps else position[n]

            members.sort(key=center)
            for i, n in enumerate(members):
                position[n] = i
    for node_id, node in nodes.items():
        node["layer"] = layer[node_id]
        node["order"] = position[node_id]


def flow_graph(
    steps: Sequence[Step],
    flow: str | None = None,
    *,
    dead_letter_queues: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The graph of every step, or of the steps in `flow` (with their routes, schedules,
    namespaces and the topics they emit), laid out in layers. `dead_letter_queues` (step
    name -> topic) adds a dashed edge from a step to the subscribers of its dead letters."""
    flows = sorted({f for s in steps for f in s.flows})
    if flow:
        steps = [s for s in steps if flow in s.flows]
    nodes, edges = _graph(steps, dead_letter_queues or {})
    edges = [e for e in edges if e["from"] in nodes and e["to"] in nodes]
    _layers(nodes, edges)
    return {"flows": flows, "flow": flow, "nodes": list(nodes.values()), "edges": edges}
