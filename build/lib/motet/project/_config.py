"""Project configuration: `motet.toml`, or `[tool.motet]` in `pyproject.toml`.

    steps = "steps"            # folder of step files, relative to the project root
    backend = "sqlite"         # memory | sqlite | redis, or a URL: sqlite:///x.db, redis://h:6379/0
    host = "127.0.0.1"
    port = 3000
    timezone = "UTC"           # default timezone of cron triggers
    cron_grace = 60            # s: missed ticks this recent fire once on start
    log_format = "pretty"      # or "json"
    log_level = "info"
    token = "..."              # operator endpoints' bearer token (optional)
    send_timeout = 30          # s: the gateway's bound on each write of a response
    linger_timeout = 5         # s: reading what a client still sends after an early answer
    linger_max_bytes = 67108864  # bytes read (and dropped) while lingering
    max_json_depth = 128       # JSON bodies nested deeper are refused (400) unparsed

    [queue]                    # defaults for every subscription
    max_retries = 5

    [queues."message.sent"]    # per topic, as the seeds' iii-config.yaml
    maxRetries = 3
    retryDelay = 5000
    concurrency = 5
    dead_letter_queue = "message.failed"

Queue options resolve as: built-in defaults < `[queue]` < `[queues."topic"]` < the trigger.
This module reads one file; `_assemble` layers it with the environment and the arguments.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from .._envelope import QueueOptions
from .._errors import ProjectConfigError
from .._logging import LEVELS
from .._redact import redact
from .._validators import load_timezone, non_empty, one_of, port, seconds
from ..steps._model import QueueOverrides
from ..steps._queue_options import (
    QUEUE_OPTION_KEYS,
    OptionError,
    merge_overrides,
    parse_queue_options,
)

__all__ = ["ProjectConfig", "load_project", "resolve_queue_options"]

BACKENDS = ("memory", "sqlite", "redis")
LOG_FORMATS = ("pretty", "json")
LogFormat = Literal["pretty", "json"]


@attrs.frozen
class ProjectConfig:
    """A project's settings; `ProjectConfig()` is what a project without a config file gets."""

    root: Path = Path(".")
    file: Path | None = None  # the file these settings came from, None = defaults
    steps: str = "steps"
    backend: str = "sqlite"
    host: str = "127.0.0.1"
    port: int = 3000
    timezone: str = "UTC"
    cron_grace: float = 60.0
    log_format: LogFormat = "pretty"
    log_level: str = "info"  # debug | info | warn | error ("warning" is read as "warn")
    token: str | None = None
    # The gateway's limits; None leaves GatewayOptions' own default.
    send_timeout: float | None = None
    linger_timeout: float | None = None
    linger_max_bytes: int | None = None
    max_json_depth: int | None = None
    queue: QueueOverrides = attrs.field(factory=QueueOverrides)
    queues: Mapping[str, QueueOverrides] = attrs.field(factory=dict)
    # Where each value not left at its default came from (the file, MOTET_PORT, --port),
    # for messages that name it.
    origins: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def origin(self, key: str) -> str:
        """Where `key`'s value came from: a file, an environment variable, a flag or
        argument, or "the default"."""
        return self.origins.get(key, "the default")

    @property
    def steps_dir(self) -> Path:
        return self.root / self.steps


def load_project(root: Path | str = ".") -> ProjectConfig:
    """Settings of the project in `root`: `motet.toml` if present, else `[tool.motet]` in
    `pyproject.toml`, else defaults. Raises ProjectConfigError naming the file and field."""
    root = Path(root)
    motet_toml = root / "motet.toml"
    if motet_toml.is_file():
        return _from_table(root, motet_toml, _read(motet_toml), "")
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        tool = _read(pyproject).get("tool", {})
        table = tool.get("motet") if isinstance(tool, Mapping) else None
        if table is not None:
            if not isinstance(table, Mapping):
                raise ProjectConfigError("expected a table", file=pyproject, field="tool.motet")
            return _from_table(root, pyproject, table, "tool.motet.")
    return ProjectConfig(root=root)


def _read(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectConfigError(f"not valid TOML: {exc}", file=file) from exc
    except OSError as exc:
        raise ProjectConfigError(f"cannot read: {exc}", file=file) from exc


@attrs.frozen
class _Reader:
    file: Path | str  # a file, or "environment" / "command line" / "arguments"
    prefix: str  # "tool.motet." inside pyproject.toml, "MOTET_" for the environment
    style: Literal["key", "env", "flag"] = "key"  # how the source spells a key

    def name(self, key: str) -> str:
        if self.style == "env":
            return self.prefix + key.upper()
        if self.style == "flag":
            return self.prefix + key.replace("_", "-")
        return self.prefix + key

    def fail(self, field: str, message: str) -> ProjectConfigError:
        return ProjectConfigError(message, file=self.file, field=self.name(field))

    def string(self, table: Mapping[str, Any], key: str, choices: tuple[str, ...] = ()) -> Any:
        value = table[key]
        problem = non_empty().problem(value) or (choices and one_of(*choices).problem(value))
        if problem:
            raise self.fail(key, problem)
        return value

    def number(self, table: Mapping[str, Any], key: str) -> float:
        value = table[key]
        problem = seconds(allow_zero=True, allow_inf=True).problem(value)
        if problem:
            raise self.fail(key, problem)
        return float(value)

    def positive(self, table: Mapping[str, Any], key: str, kind: type) -> Any:
        value = table[key]
        ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
        if isinstance(value, bool) or not ok or value <= 0:
            what = "a number of seconds" if kind is float else "a whole number"
            raise self.fail(key, f"expected {what} > 0, got {value!r}")
        return kind(value)

    def queue(self, table: Any, field: str) -> QueueOverrides:
        if not isinstance(table, Mapping):
            raise self.fail(field, f"expected a table of queue options, got {table!r}")
        unknown = sorted(k for k in table if k not in QUEUE_OPTION_KEYS)
        if unknown:
            raise self.fail(
                f"{field}.{unknown[0]}",
                f"unknown queue option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(QUEUE_OPTION_KEYS))}",
            )
        try:
            return parse_queue_options(table)
        except OptionError as exc:
            raise self.fail(f"{field}.{exc.key}", exc.message) from None


# The gateway's limits a project may set, with their kind (seconds or a count).
GATEWAY_KEYS: Mapping[str, type] = {
    "send_timeout": float,
    "linger_timeout": float,
    "linger_max_bytes": int,
    "max_json_depth": int,
}
# Every key of a settings table that is one value (not a table of queue options).
SCALAR_KEYS = (
    "steps",
    "backend",
    "host",
    "port",
    "timezone",
    "cron_grace",
    "log_format",
    "log_level",
    "token",
    *GATEWAY_KEYS,
)
_KEYS = (*SCALAR_KEYS, "queue", "queues")


def _from_table(root: Path, file: Path, table: Mapping[str, Any], prefix: str) -> ProjectConfig:
    r = _Reader(file, prefix)
    unknown = sorted(k for k in table if k not in _KEYS)
    if unknown:
        raise r.fail(
            unknown[0],
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_KEYS))}",
        )
    values = read_settings(r, table)
    return ProjectConfig(root=root, file=file, origins=dict.fromkeys(values, str(file)), **values)


def read_settings(r: _Reader, table: Mapping[str, Any]) -> dict[str, Any]:
    """The checked values of the known keys present in `table` (a file's table, the
    environment's values, or the arguments); errors name the field as `r` spells it."""
    values: dict[str, Any] = {}
    for key in ("steps", "host", "token"):
        if key in table:
            values[key] = r.string(table, key)
    if "backend" in table:
        values["backend"] = _backend(r, r.string(table, "backend"))
    if "port" in table:
        problem = port().problem(table["port"])
        if problem:
            raise r.fail("port", problem)
        values["port"] = table["port"]
    if "timezone" in table:
        values["timezone"] = _timezone(r, r.string(table, "timezone"))
    if "cron_grace" in table:
        values["cron_grace"] = r.number(table, "cron_grace")
    if "log_format" in table:
        values["log_format"] = r.string(table, "log_format", LOG_FORMATS)
    if "log_level" in table:
        level = table["log_level"]
        name = level.lower() if isinstance(level, str) else level
        name = "warn" if name == "warning" else name
        if name not in LEVELS:
            raise r.fail("log_level", f"expected one of {list(LEVELS)}, got {level!r}")
        values["log_level"] = name
    if "queue" in table:
        values["queue"] = r.queue(table["queue"], "queue")
    if "queues" in table:
        queues = table["queues"]
        if not isinstance(queues, Mapping):
            raise r.fail("queues", f'expected tables like [queues."topic.name"], got {queues!r}')
        values["queues"] = {
            topic: r.queue(options, f"queues.{_toml_key(topic)}")
            for topic, options in queues.items()
        }
    for key, kind in GATEWAY_KEYS.items():
        if key in table:
            values[key] = r.positive(table, key, kind)
    return values


def _toml_key(topic: str) -> str:
    return topic if topic.replace("_", "").replace("-", "").isalnum() else f'"{topic}"'


def _backend(r: _Reader, value: str) -> str:
    # The same forms `--backend` takes: a name, or a URL whose scheme names the backend
    # (`sqlite:data/q.db` and `sqlite:///abs.db` alike; `rediss://` and `unix://` are Redis).
    scheme = value.split(":", 1)[0]
    if scheme not in (*BACKENDS, "rediss", "unix"):
        raise r.fail(
            "backend",
            f"expected one of {list(BACKENDS)} or a URL like 'sqlite:///.motet/motet.db' or "
            f"'redis://127.0.0.1:6379/0', got {redact(value)!r}",
        )
    return value


def _timezone(r: _Reader, value: str) -> str:
    try:
        load_timezone(value)
    except ValueError as exc:
        raise r.fail("timezone", str(exc)) from None
    return value


def resolve_queue_options(
    project: ProjectConfig | None, topic: str, trigger_overrides: QueueOverrides
) -> QueueOptions:
    """Built-in defaults < project `[queue]` < project `[queues."topic"]` < the trigger."""
    merged = QueueOverrides()
    if project is not None:
        merged = merge_overrides(merged, project.queue)
        merged = merge_overrides(merged, project.queues.get(topic, QueueOverrides()))
    merged = merge_overrides(merged, trigger_overrides)
    return QueueOptions(
        **{
            a.name: getattr(merged, a.name)
            for a in attrs.fields(QueueOverrides)
            if getattr(merged, a.name) is not None
        }
    )
