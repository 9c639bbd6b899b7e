"""What a set of steps runs under a project's config, decided before anything runs.

`plan(steps, project)` is pure: the subscriptions the backend declares, one actor per queue,
state and cron subscription (with the trigger it serves), and the cron jobs the clock actor
fires. The runtime runs a plan; `motet emit`, `motet steps` and the console's cron view read
one without starting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._envelope import QueueOptions, Subscription, cron_topic, state_topic
from .actors._clock_actor import CronJob, cron_schedules
from .project import ProjectConfig, resolve_queue_options
from .steps._cron import parse_cron
from .steps._model import CronTrigger, QueueTrigger, StateTrigger, Step

__all__ = ["CRON_DEFAULTS", "ActorPlan", "Plan", "plan"]

# A tick leased ahead would wait behind the running one while another instance is idle.
CRON_DEFAULTS = attrs.evolve(QueueOptions(), max_retries=0, concurrency=1, prefetch=0)


@attrs.frozen
class ActorPlan:
    """One step actor: the step, the trigger it serves and its subscription."""

    step: Step
    trigger: Any  # QueueTrigger | StateTrigger | CronTrigger
    subscription: Subscription


@attrs.frozen
class Plan:
    subscriptions: tuple[Subscription, ...]
    actors: tuple[ActorPlan, ...]
    cron_jobs: tuple[CronJob, ...]


def plan(steps: Sequence[Step], project: ProjectConfig | None = None) -> Plan:
    """The subscriptions, actors and cron jobs of `steps` under `project` (default: a
    project without a config file). Raises the user's errors (a bad cron expression, two
    schedules of one name) before anything runs."""
    project = project if project is not None else ProjectConfig()
    schedules = cron_schedules(steps)
    names = iter(schedules)  # cron triggers in the order met below
    subs: list[Subscription] = []
    actors: list[ActorPlan] = []
    for step in steps:
        for trigger in step.triggers:
            if isinstance(trigger, QueueTrigger):
                options = resolve_queue_options(project, trigger.topic, trigger.options)
                sub = Subscription(trigger.topic, step.name, options)
            elif isinstance(trigger, StateTrigger):
                topic = state_topic(trigger.namespace)
                options = resolve_queue_options(project, topic, trigger.options)
                sub = Subscription(topic, step.name, options)
            elif isinstance(trigger, CronTrigger):
                # Each cron trigger is its own schedule, with its own tick topic and
                # actor: `ctx.trigger` is the trigger that fired.
                sub = Subscription(cron_topic(next(names)[2]), step.name, CRON_DEFAULTS)
            else:
                continue
            if any(s.key == sub.key for s in subs):
                continue
            subs.append(sub)
            actors.append(ActorPlan(step, trigger, sub))
    jobs = []
    for step, trigger, name in schedules:
        schedule = parse_cron(trigger.expression, trigger.timezone or project.timezone)
        grace = trigger.grace if trigger.grace is not None else project.cron_grace
        jobs.append(CronJob(step.name, schedule, trigger.skip_if_running, grace, name))
    return Plan(tuple(subs), tuple(actors), tuple(jobs))
