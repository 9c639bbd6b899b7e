"""Motia's `iii-config.yaml`: the queue settings motet honours, and one line for each key it
does not use (said at start, never silently dropped).

Two shapes are read, as Motia's documents write them:

    queues:                                 # per topic (Motia's queue docs)
      message.sent:
        max_retries: 3                      # or maxRetries
        retry_delay: 5000                   # ms, or retryDelay
        concurrency: 5                      # or maxConcurrency
        strategy: fifo                      # or type: fifo
        dead_letter_queue: message.failed   # or deadLetterQueue

    modules:                                # the iii engine's own file
      - class: modules::queue::QueueModule
        config:
          queue_configs:
            default: {max_retries: 5, concurrency: 5, type: standard, backoff_ms: 1000}
            payments: {type: fifo, max_retries: 10}

In both, the queue named `default` holds every queue's defaults (motet.toml's `[queue]`) and
every other name is a topic (`[queues."topic"]`). The keys mean what motet.toml's keys mean;
iii's `${VAR:default}` values are expanded from the environment. Everything else (the engine's
modules, adapters, ports) is listed as not used, one line each.

PyYAML is imported here only, and only when a YAML file is read: `import motet` stays light.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import ProjectConfigError
from ..steps._model import QueueOverrides
from ..steps._queue_options import QUEUE_OPTION_KEYS, OptionError, parse_queue_options
from ._motia_files import MOTIA_FILES as MOTIA_FILES
from ._motia_files import looks_like_iii as looks_like_iii

__all__ = ["MOTIA_FILES", "IIIConfig", "load_iii_config", "looks_like_iii"]

DEFAULT_QUEUE = "default"

# Motia / iii spellings that QUEUE_OPTION_KEYS does not already know -> QueueOverrides field.
_MOTIA_QUEUE_KEYS: Mapping[str, str] = {
    "type": "strategy",
    "backoff_ms": "retry_delay",
    "backoffMs": "retry_delay",
    "backoffDelayMs": "retry_delay",
    "backoff_delay_ms": "retry_delay",
    "visibilityTimeout": "lease",
    "visibility_timeout": "lease",
}
_BACKOFF_TYPE_KEYS = ("backoffType", "backoff_type")
# What a Motia user may expect of a queue key motet does not use, said with it.
_QUEUE_KEY_REASONS: Mapping[str, str] = {
    "message_group_field": "fifo groups come from the emit's messageGroupId (or group=)",
    "messageGroupField": "fifo groups come from the emit's messageGroupId (or group=)",
    "delaySeconds": "messages are delivered as soon as they are emitted",
    "delay_seconds": "messages are delivered as soon as they are emitted",
}
# Per iii module class: what motet does instead (the module itself is never run).
_MODULE_REASONS: Mapping[str, str] = {
    "RestApiModule": "motet serves HTTP steps on its own gateway at host/port (default "
    "127.0.0.1:3000; motet.toml, MOTET_PORT or --port)",
    "StreamModule": "motet has no iii stream server",
    "StateModule": "state lives in motet's backend (--backend; sqlite by default)",
    "QueueModule": "queues live in motet's backend (--backend; sqlite by default)",
    "PubSubModule": "topics are routed by motet's backend",
    "CronModule": "cron ticks are claimed in motet's backend, once across instances",
    "OtelModule": "motet records logs, traces and metrics itself (console, /metrics)",
    "ExecModule": "motet loads the steps folder itself and runs no exec commands",
    "KvServer": "state lives in motet's backend",
}
_ENV_VALUE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}$")
_STEPS_DIR = re.compile(r"motia\s+(?:run|dev|start)\b.*?--dir[=\s]+(\S+)")


@attrs.frozen
class IIIConfig:
    """What motet takes from a Motia file: queue defaults and per-topic options (as
    motet.toml's `[queue]` / `[queues."t"]`), a steps folder when the iii ExecModule names one,
    and a line for each key it does not use."""

    file: Path
    queue: QueueOverrides = attrs.field(factory=QueueOverrides)
    queues: Mapping[str, QueueOverrides] = attrs.field(factory=dict)
    steps: str | None = None
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what was taken from where, for the start report


def load_iii_config(file: Path, environ: Mapping[str, str] | None = None) -> IIIConfig:
    """Read `file`. Raises ProjectConfigError naming file, line and key for YAML that does
    not parse and for a known key with a value of the wrong kind."""
    environ = os.environ if environ is None else environ
    data, lines = _read_yaml(file)
    reader = _Reader(file, lines, environ)
    if data is None:
        return IIIConfig(file=file)
    if not isinstance(data, Mapping):
        raise reader.fail((), f"expected a mapping of keys (queues:, modules:), got {_kind(data)}")
    tables: dict[str, tuple[tuple[Any, ...], Mapping[str, Any]]] = {}
    steps: str | None = None
    for key, value in data.items():
        if key == "queues":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise reader.fail(
                    ("queues",), f"expected topics with queue options, got {_kind(value)}"
                )
            for topic, options in value.items():
                reader.add_table(tables, ("queues", topic), str(topic), options)
        elif key == "modules":
            steps = _read_modules(reader, tables, value)
        else:
            reader.ignore((key,), _TOP_REASONS.get(str(key), "not a setting motet has"))
    queue = QueueOverrides()
    queues: dict[str, QueueOverrides] = {}
    for name, (path, options) in tables.items():
        overrides = reader.queue_options(path, options)
        if name == DEFAULT_QUEUE:
            queue = overrides
        else:
            queues[name] = overrides
    if steps is not None and steps != "steps":
        reader.notes.append(
            f"{file.name}: steps are loaded from {steps!r} (the folder the ExecModule's "
            "`motia run --dir` names)"
        )
    return IIIConfig(
        file=file,
        queue=queue,
        queues=queues,
        steps=steps,
        ignored=tuple(reader.ignored),
        notes=tuple(reader.notes),
    )


_TOP_REASONS: Mapping[str, str] = {
    "port": "the iii engine's WebSocket port; motet has no engine (steps run in-process)",
}


def _read_modules(reader: _Reader, tables: dict[str, Any], modules: Any) -> str | None:
    if modules is None:
        return None
    if not isinstance(modules, list):
        raise reader.fail(("modules",), f"expected a list of modules, got {_kind(modules)}")
    steps: str | None = None
    for i, module in enumerate(modules):
        path: tuple[Any, ...] = ("modules", i)
        if not isinstance(module, Mapping):
            raise reader.fail(path, f"expected a module (class:, config:), got {_kind(module)}")
        cls = str(module.get("class", ""))
        short = cls.rsplit("::", 1)[-1]
        config = module.get("config")
        if short == "QueueModule" and isinstance(config, Mapping):
            configs = config.get("queue_configs")
            if configs is not None:
                if not isinstance(configs, Mapping):
                    raise reader.fail(
                        (*path, "config", "queue_configs"),
                        f"expected queue names with options, got {_kind(configs)}",
                    )
                for name, options in configs.items():
                    reader.add_table(
                        tables, (*path, "config", "queue_configs", name), str(name), options
                    )
            for key in config:
                if key != "queue_configs":
                    reason = f"({cls}) is not used: {_MODULE_REASONS[short]}"
                    reader.ignore((*path, "config", key), reason, bare=True)
            continue
        if short == "ExecModule" and isinstance(config, Mapping):
            for command in config.get("exec") or ():
                found = _STEPS_DIR.search(str(command))
                if found:
                    steps = found.group(1).strip("'\"").rstrip("/")
        reason = _MODULE_REASONS.get(short, "an iii engine module motet does not have")
        reader.ignore(path, f"({cls or 'no class'}) is not used: {reason}", bare=True)
    return steps


@attrs.define
class _Reader:
    file: Path
    lines: Mapping[tuple[Any, ...], int]
    environ: Mapping[str, str]
    ignored: list[str] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def fail(self, path: tuple[Any, ...], message: str) -> ProjectConfigError:
        return ProjectConfigError(
            message, file=self.file, field=_dotted(path) or None, line=self.line(path)
        )

    def ignore(self, path: tuple[Any, ...], reason: str, *, bare: bool = False) -> None:
        where = f"{self.file.name} line {self.line(path)}: {_dotted(path)}"
        self.ignored.append(f"{where} {reason}" if bare else f"{where} is not used: {reason}")

    def add_table(
        self, tables: dict[str, Any], path: tuple[Any, ...], name: str, options: Any
    ) -> None:
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise self.fail(
                path, f"expected queue options (max_retries: ...), got {_kind(options)}"
            )
        if name in tables:
            raise self.fail(
                path, f"queue {name!r} is configured twice (also at {_dotted(tables[name][0])})"
            )
        tables[name] = (path, options)

    def queue_options(self, path: tuple[Any, ...], options: Mapping[str, Any]) -> QueueOverrides:
        table: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        backoff: tuple[str, Any] | None = None
        for key, raw in options.items():
            at = (*path, key)
            field = QUEUE_OPTION_KEYS.get(key) or _MOTIA_QUEUE_KEYS.get(key)
            if key in _BACKOFF_TYPE_KEYS:
                backoff = (key, self.expand(at, raw))
                continue
            if field is None:
                reason = _QUEUE_KEY_REASONS.get(str(key), "not a queue option motet has")
                self.ignore(at, reason)
                continue
            if field in spelled:
                raise self.fail(at, f"given twice, as {spelled[field]!r} and {key!r}")
            spelled[field] = key
            value = self.expand(at, raw)
            if field == "strategy" and isinstance(value, str):
                value = value.lower()
            table[field] = value
        if backoff is not None:
            self._backoff_type(path, backoff, table)
        try:
            return parse_queue_options(table)
        except OptionError as exc:
            key = spelled.get(exc.key, exc.key)
            raise self.fail((*path, key), exc.message) from None

    def _backoff_type(
        self, path: tuple[Any, ...], backoff: tuple[str, Any], table: dict[str, Any]
    ) -> None:
        key, value = backoff
        kind = value.lower() if isinstance(value, str) else value
        if kind == "exponential":
            return  # motet's own backoff: doubled per retry from retry_delay
        if kind == "fixed":
            # Every retry after the same delay: the doubling is capped at the first delay.
            table.setdefault("max_retry_delay", table.get("retry_delay", 1000))
            return
        raise self.fail((*path, key), f"expected 'exponential' or 'fixed', got {value!r}")

    def expand(self, path: tuple[Any, ...], value: Any) -> Any:
        """iii's `${VAR:default}`: the variable's value, else the default, read as YAML reads
        a plain value (`5` is a number)."""
        if not isinstance(value, str):
            return value
        found = _ENV_VALUE.match(value.strip())
        if not found:
            return value
        name, default = found.group(1), found.group(2)
        text = self.environ.get(name, default)
        if text is None:
            raise self.fail(
                path, f"${{{name}}} is not set and gives no default (${{{name}:value}})"
            )
        import yaml

        try:
            return yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError:
            return text


def _read_yaml(file: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    import yaml

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectConfigError(f"cannot read: {exc}", file=file) from exc
    # libyaml's parser when the wheel has it (PyYAML's manylinux wheels do): same nodes and
    # marks, several times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[tuple[Any, ...], int] = {}
        _record_lines(file, node, (), lines)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        raise ProjectConfigError(
            f"not valid YAML: {problem}", file=file, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError as exc:
        raise ProjectConfigError(f"not valid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _record_lines(file: Path, node: Any, path: tuple[Any, ...], lines: dict[Any, int]) -> None:
    """The 1-based line of every key and list item, by path, for messages that point at it.
    A key given twice in one mapping is an error here (PyYAML would keep the last silently)."""
    import yaml

    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ProjectConfigError(
                    f"key {key!r} is given twice (first on line {seen[key]})",
                    file=file,
                    field=_dotted((*path, key)),
                    line=line,
                )
            seen[key] = line
            lines[(*path, key)] = line
            _record_lines(file, value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(file, item, (*path, i), lines)


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            plain = text.replace("_", "").replace("-", "").isalnum()
            out += ("." if out else "") + (text if plain else f'"{text}"')
    return out


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "true/false"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return f"{name} ({value!r})" if kind in (str, bool) else name
    return f"{type(value).__name__} ({value!r})"
