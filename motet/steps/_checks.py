"""Start-time warnings that catch typos: topics that connect nothing, step files named so they
are never loaded.

A message on a topic nobody subscribes to is dropped, and a step subscribed to a topic nobody
emits never runs; both start without an error, so a misspelt topic would go unnoticed. Each
such topic is one warning line, with "did you mean" when a known topic is close.

Which topics count as emitted: every step's `enqueues` / `emits`, the `virtualEmits` of any
step (Motia's way of drawing a source outside the project: a noop step that `virtualEmits` a
topic says "this comes from outside", e.g. `motet emit`, `Runtime.emit` or another service),
and every `dead_letter_queue` (the runtime publishes dead letters there). Which count as
subscribed: every queue trigger's topic and every `virtualSubscribes`. Internal topics
(`cron:...`, `state:...`) are the runtime's own and never warned about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from .._envelope import CRON_TOPIC_PREFIX, STATE_TOPIC_PREFIX, Subscription
from ._discovery import stray_step_files
from ._model import Step

__all__ = ["file_warnings", "start_warnings", "topic_warnings"]

_INTERNAL = (CRON_TOPIC_PREFIX, STATE_TOPIC_PREFIX)
_CLOSE = 0.85  # difflib ratio from which a known topic is offered: a typo's, not a cousin's


def _names(items: Iterable[str]) -> str:
    return ", ".join(repr(i) for i in sorted(set(items)))


def _did_you_mean(topic: str, known: Iterable[str]) -> str:
    import difflib  # only once a topic is warned about: a served app need not hold it

    candidates = sorted({k for k in known if k != topic})
    close = difflib.get_close_matches(topic, candidates, n=1, cutoff=_CLOSE)
    return f" (did you mean {close[0]!r}?)" if close else ""


def topic_warnings(steps: Sequence[Step], subscriptions: Sequence[Subscription]) -> list[str]:
    """One line per topic that is subscribed but never emitted, emitted but never
    subscribed, or a dead-letter topic that no step subscribes to."""
    emitters: dict[str, list[str]] = defaultdict(list)
    external: set[str] = set()
    for step in steps:
        for topic in step.enqueues:
            emitters[topic].append(step.name)
        external.update(step.virtual_emits)
    subscribers: dict[str, list[str]] = defaultdict(list)
    dead_letter_topics: dict[str, list[str]] = defaultdict(list)
    for sub in subscriptions:
        if not sub.topic.startswith(_INTERNAL):
            subscribers[sub.topic].append(sub.step)
        if sub.options.dead_letter_queue:
            dead_letter_topics[sub.options.dead_letter_queue].append(sub.key)
    virtual_subscribed = {t for step in steps for t in step.virtual_subscribes}
    sources = set(emitters) | external | set(dead_letter_topics)
    sinks = set(subscribers) | virtual_subscribed

    lines = []
    for topic in sorted(set(subscribers) - sources):
        lines.append(
            f"topic {topic!r} is subscribed by step(s) {_names(subscribers[topic])} but no step "
            f"emits it{_did_you_mean(topic, sources)}; if it comes from outside (motet emit, "
            "Runtime.emit), list it in a noop step's virtualEmits"
        )
    for topic in sorted(set(emitters) - sinks):
        lines.append(
            f"topic {topic!r} is emitted by step(s) {_names(emitters[topic])} but no step "
            f"subscribes to it, so its messages go nowhere{_did_you_mean(topic, sinks)}"
        )
    for topic in sorted(set(dead_letter_topics) - sinks):
        lines.append(
            f"dead_letter_queue topic {topic!r} (of {_names(dead_letter_topics[topic])}) has no "
            f"subscriber{_did_you_mean(topic, sinks)}; dead letters are still kept in the "
            "dead-letter store (motet dlq list)"
        )
    return lines


def file_warnings(folder: Path) -> list[str]:
    """One line per file under the steps `folder` that looks like a step (top-level `config`
    and `handler`) but is not named as one, so it is not loaded."""
    lines = []
    for path in stray_step_files(folder):
        shown = Path(folder.name, path.relative_to(folder))
        lines.append(
            f"{shown} defines `config` and `handler` but is not loaded: step files are named "
            f"*_step.py or *.step.py (rename it to {path.stem}_step.py)"
        )
    return lines


def start_warnings(
    steps: Sequence[Step],
    subscriptions: Sequence[Subscription],
    folder: Path | None,
    project_folder: Path,
) -> list[str]:
    """Topic warnings, then file warnings for `folder`; without one, for the project's steps
    folder when every step file lives in it (steps built in code have no folder to check)."""
    lines = topic_warnings(steps, subscriptions)
    if folder is None:
        files = [s.file.resolve() for s in steps if s.file is not None]
        default = project_folder.resolve()
        if files and all(f.is_relative_to(default) for f in files):
            folder = project_folder
    if folder is not None and folder.is_dir():
        lines += file_warnings(folder)
    return lines
