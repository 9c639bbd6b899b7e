"""Queue options as users spell them (snake_case, or the seeds' camelCase) -> QueueOverrides.

Shared by queue/state triggers and the project config, which report problems with their own
error types: `parse_queue_options` raises `OptionError(key, message)` and the caller turns
it into a StepDefinitionError or a ProjectConfigError with the right file and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._validators import Check, count, non_empty, one_of, seconds
from ._model import QueueOverrides

__all__ = ["QUEUE_OPTION_KEYS", "OptionError", "merge_overrides", "parse_queue_options"]

# spelling -> QueueOverrides field. `maxConcurrency` is the seeds' iii-config.yaml name.
QUEUE_OPTION_KEYS: dict[str, str] = {
    "max_retries": "max_retries",
    "maxRetries": "max_retries",
    "retry_delay": "retry_delay",
    "retryDelay": "retry_delay",
    "max_retry_delay": "max_retry_delay",
    "maxRetryDelay": "max_retry_delay",
    "concurrency": "concurrency",
    "maxConcurrency": "concurrency",
    "max_concurrency": "concurrency",
    "dead_letter_queue": "dead_letter_queue",
    "deadLetterQueue": "dead_letter_queue",
    "strategy": "strategy",
    "timeout": "timeout",
    "lease": "lease",
    "prefetch": "prefetch",
}

QUEUE_STRATEGIES = ("standard", "fifo", "priority")


class OptionError(ValueError):
    """One option is wrong; `key` is the spelling the user wrote."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


# QueueOverrides field -> the rule its value follows.
_CHECKS: dict[str, Check] = {
    "max_retries": count(0),
    "retry_delay": count(0, unit=" (milliseconds)"),
    "max_retry_delay": count(0, unit=" (milliseconds)"),
    "concurrency": count(1),
    "prefetch": count(0),
    "dead_letter_queue": Check("a topic name (non-empty string)", non_empty().accepts),
    "strategy": one_of(*QUEUE_STRATEGIES),
    "timeout": seconds(),
    "lease": seconds(),
}


def _check(field: str, key: str, value: Any) -> Any:
    problem = _CHECKS[field].problem(value)
    if problem:
        raise OptionError(key, problem)
    return float(value) if field in ("timeout", "lease") else value


def parse_queue_options(options: Mapping[str, Any]) -> QueueOverrides:
    """Check every key of `options` that is a queue option; other keys are the caller's.

    Two spellings of one option (`max_retries` and `maxRetries`) is an error, not a silent
    choice. `None` values mean "not set here".
    """
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in options.items():
        field = QUEUE_OPTION_KEYS.get(key)
        if field is None or value is None:
            continue
        if field in spelled:
            raise OptionError(key, f"given twice, as {spelled[field]!r} and {key!r}")
        spelled[field] = key
        values[field] = _check(field, key, value)
    return QueueOverrides(**values)


def merge_overrides(base: QueueOverrides, top: QueueOverrides) -> QueueOverrides:
    """`top`'s set options over `base`'s."""
    changes = {
        a.name: getattr(top, a.name)
        for a in attrs.fields(QueueOverrides)
        if getattr(top, a.name) is not None
    }
    return attrs.evolve(base, **changes)
