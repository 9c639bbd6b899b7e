"""Structured logs: every line carries the step, trace id, message id and attempt it belongs to.

Handlers get a bound `Logger` as `ctx.logger`; records go to the runtime's `LogHub`, which
fans them out to sinks (stdout, stdlib logging, the test harness, the console).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import IO, Any

import attrs

from ._convert import unstructure, wire
from ._envelope import JSON
from ._traceback import format_failure

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
_STDLIB_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


@attrs.frozen
class LogRecord:
    time: float  # epoch seconds, from the runtime's clock
    level: str  # debug | info | warn | error
    message: str = attrs.field(metadata=wire(key="msg"))
    step: str | None = attrs.field(default=None, metadata=wire(omit_none=True))
    trace_id: str | None = attrs.field(default=None, metadata=wire(omit_none=True))
    message_id: str | None = attrs.field(default=None, metadata=wire(omit_none=True))
    attempt: int | None = attrs.field(default=None, metadata=wire(omit_none=True))
    # The line's own fields sit beside the fixed ones in its JSON form.
    fields: Mapping[str, JSON] = attrs.field(factory=dict, metadata=wire(flatten=True))
    # Of the failure this line reports (`exc_info=`).
    traceback: str | None = attrs.field(default=None, metadata=wire(omit_none=True))


LogSink = Callable[[LogRecord], None]


class LogHub:
    """Fans records out to sinks; drops records under `level`. Sinks must not block."""

    def __init__(self, clock: Callable[[], float], *, level: str = "debug") -> None:
        self._clock = clock
        self.sinks: list[LogSink] = []
        self.level = LEVELS[level]

    def add_sink(self, sink: LogSink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: LogSink) -> None:
        self.sinks.remove(sink)

    def emit(
        self,
        level: str,
        message: str,
        bound: Mapping[str, Any],
        fields: Mapping[str, Any],
        exc_info: BaseException | bool | None = None,
    ) -> None:
        if LEVELS[level] < self.level or not self.sinks:
            return
        failure = sys.exc_info()[1] if exc_info is True else exc_info or None
        record = LogRecord(
            time=self._clock(),
            level=level,
            message=str(message),
            step=bound.get("step"),
            trace_id=bound.get("trace_id"),
            message_id=bound.get("message_id"),
            attempt=bound.get("attempt"),
            fields={k: _jsonable(v) for k, v in fields.items()} if fields else {},
            traceback=format_failure(failure) if isinstance(failure, BaseException) else None,
        )
        for sink in self.sinks:
            sink(record)

    def logger(self, **bound: Any) -> Logger:
        return Logger(self, bound)


class Logger:
    """`info/warn/error/debug(message, **fields)`; Motia's `(message, value)` also works: a
    dict's keys become fields, any other value (a list, a string, a number, an object) is
    logged under `data`. A log call never raises into the handler.

    `exc_info=exc` (or `True` inside an `except` block) attaches the failure's traceback to
    the record: printed under the line in the pretty format, a `traceback` field in JSON."""

    __slots__ = ("_bound", "_hub")

    def __init__(self, hub: LogHub, bound: Mapping[str, Any]) -> None:
        self._hub = hub
        self._bound = bound

    def bind(self, **bound: Any) -> Logger:
        return Logger(self._hub, {**self._bound, **bound})

    def _log(
        self,
        level: str,
        message: str,
        extra: Mapping[str, Any] | None,
        fields: Mapping[str, Any],
        exc_info: BaseException | bool | None,
    ) -> None:
        # Motia's second argument may be any JSON value: a dict adds its fields, anything
        # else sits under `data`. A log call never fails the handler that makes it: a value
        # that cannot be turned into JSON is written as its repr, and should even that fail
        # (a sink raising, say), the line is dropped and said so on stderr.
        try:
            if extra is None:  # the common call, without the Mapping (ABC) check
                pass
            elif isinstance(extra, Mapping):
                fields = {**{str(k): v for k, v in extra.items()}, **fields}
            else:
                fields = {"data": extra, **fields}
            if exc_info is True:  # read here: a sink's own error must not replace it
                exc_info = sys.exc_info()[1]
            self._hub.emit(level, message, self._bound, fields, exc_info)
        except Exception as exc:
            report_lost_line(message, exc)

    def debug(
        self,
        message: str,
        extra: Any = None,
        /,
        *,
        exc_info: BaseException | bool | None = None,
        **fields: Any,
    ) -> None:
        self._log("debug", message, extra, fields, exc_info)

    def info(
        self,
        message: str,
        extra: Any = None,
        /,
        *,
        exc_info: BaseException | bool | None = None,
        **fields: Any,
    ) -> None:
        self._log("info", message, extra, fields, exc_info)

    def warn(
        self,
        message: str,
        extra: Any = None,
        /,
        *,
        exc_info: BaseException | bool | None = None,
        **fields: Any,
    ) -> None:
        self._log("warn", message, extra, fields, exc_info)

    warning = warn

    def error(
        self,
        message: str,
        extra: Any = None,
        /,
        *,
        exc_info: BaseException | bool | None = None,
        **fields: Any,
    ) -> None:
        self._log("error", message, extra, fields, exc_info)


_MAX_DEPTH = 32  # deeper (or a cycle) is written as the repr of what is there


def _jsonable(value: Any, depth: int = 0) -> JSON:
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):  # NaN and infinities are not JSON
        return value if value == value and value not in (_INF, -_INF) else repr(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if depth >= _MAX_DEPTH:
        return _repr(value)
    try:
        if isinstance(value, Mapping):
            return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [_jsonable(v, depth + 1) for v in value]
        if attrs.has(type(value)):
            return _jsonable(attrs.asdict(value), depth + 1)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return _jsonable(dataclasses.asdict(value), depth + 1)
        dump = getattr(value, "model_dump", None)  # a pydantic model
        if callable(dump) and not isinstance(value, type):
            return _jsonable(dump(mode="json"), depth + 1)
    except Exception:
        pass
    return _repr(value)


_INF = float("inf")
jsonable = _jsonable  # for loggers in other threads, which freeze values where they log


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__name__}: repr failed: {type(exc).__name__}>"


def report_lost_line(message: Any, exc: Exception) -> None:
    try:
        sys.stderr.write(f"motet: a log line was dropped ({type(exc).__name__}: {exc}): ")
        sys.stderr.write(f"{_repr(message)[:200]}\n")
    except Exception:
        pass


def stream_sink(stream: IO[str] | None = None, *, fmt: str = "pretty") -> LogSink:
    """Write records as JSON lines or as one readable line each."""

    def sink(record: LogRecord) -> None:
        out = stream if stream is not None else sys.stdout
        if fmt == "json":
            out.write(json.dumps(unstructure(record), default=repr) + "\n")
        else:
            out.write(format_pretty(record) + "\n")
        out.flush()

    return sink


def format_pretty(record: LogRecord) -> str:
    import datetime as _dt

    stamp = _dt.datetime.fromtimestamp(record.time, tz=_dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    where = record.step or "motet"
    parts = [f"{stamp} {record.level.upper():5} [{where}] {record.message}"]
    if record.trace_id:  # its random end: a trace id motet made starts with its time
        parts.append(f"trace={record.trace_id[-8:]}")
    if record.attempt and record.attempt > 1:
        parts.append(f"attempt={record.attempt}")
    parts.extend(f"{k}={json.dumps(v, default=repr)}" for k, v in record.fields.items())
    line = " ".join(parts)
    if record.traceback:
        line += "\n" + "\n".join("    " + row for row in record.traceback.splitlines())
    return line


def stdlib_sink(logger_name: str = "motet") -> LogSink:
    """Forward records to stdlib `logging`, so an embedding service's handlers receive them.

    A record's traceback becomes the stdlib record's `exc_text`, which every
    `logging.Formatter` prints under the message, as it would an exception's."""
    target = logging.getLogger(logger_name)

    def sink(record: LogRecord) -> None:
        level = _STDLIB_LEVELS[record.level]
        if not target.isEnabledFor(level):
            return
        out = target.makeRecord(
            target.name,
            level,
            "(motet)",
            0,
            record.message,
            (),
            None,
            extra={"motet": unstructure(record)},
        )
        out.exc_text = record.traceback
        target.handle(out)

    return sink
