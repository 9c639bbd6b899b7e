"""The trigger constructors users call, `http()`/`queue()`/`cron()`/`state()`, and the
validation they share with trigger dicts in configs (`{"type": "http", "method": ..., ...}`).

Each builder takes the raw keys as the user wrote them plus a `Where`, so the same checks
give `field 'path'` from `http("GET", "pets")` and `field 'triggers[0].path'` from a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._validators import load_timezone
from . import _fields as f
from ._cron import parse_cron
from ._fields import Where
from ._handlers import check_condition
from ._model import HTTP_METHODS, CronTrigger, HttpTrigger, QueueTrigger, StateTrigger, Trigger
from ._paths import PathError
from ._queue_options import QUEUE_OPTION_KEYS, OptionError, parse_queue_options

__all__ = [
    "HTTP_KEYS",
    "check_timezone",
    "cron",
    "http",
    "queue",
    "state",
    "trigger_from_dict",
]

HTTP_KEYS = (
    "method",
    "path",
    "body",
    "bodySchema",
    "body_schema",
    "query",
    "querySchema",
    "query_schema",
    "response",
    "responseSchema",
    "response_schema",
    "timeout",
)
QUEUE_KEYS = ("topic", "input", *QUEUE_OPTION_KEYS)
CRON_KEYS = ("expression", "cron", "timezone", "tz", "skip_if_running", "skipIfRunning", "grace")
STATE_KEYS = ("namespace", "filter", "condition", "events", *QUEUE_OPTION_KEYS)
STATE_EVENTS = ("created", "updated", "deleted")


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def http(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Any = None,
    response: Mapping[int, Any] | None = None,
    timeout: float | None = None,
    **aliases: Any,
) -> HttpTrigger:
    """An HTTP trigger: `http("POST", "/pets", body=NewPet)`. `body_schema=`/`bodySchema=` are
    accepted as aliases of `body`."""
    raw = {"method": method, "path": path}
    raw |= _given(body=body, query=query, response=response, timeout=timeout) | aliases
    return build_http(raw, Where())


def queue(topic: str, *, input: Any = None, **options: Any) -> QueueTrigger:
    """A queue trigger: `queue("pet.created", input=Pet, max_retries=5)`."""
    return build_queue({"topic": topic} | _given(input=input) | options, Where())


def cron(expression: str, *, tz: str | None = None, **options: Any) -> CronTrigger:
    """A cron trigger: `cron("0 8 * * *", tz="Europe/Paris")`."""
    return build_cron({"expression": expression} | _given(tz=tz) | options, Where())


def state(
    namespace: str,
    *,
    filter: Mapping[str, Any] | None = None,
    condition: Callable[..., Any] | None = None,
    **options: Any,
) -> StateTrigger:
    """A state trigger: `state("messages", filter={"status": "processed"})`."""
    raw = {"namespace": namespace} | _given(filter=filter, condition=condition) | options
    return build_state(raw, Where())


def trigger_from_dict(raw: Any, where: Where) -> Trigger:
    """A trigger object passes through; a dict is built by its `type`."""
    if isinstance(raw, HttpTrigger | QueueTrigger | CronTrigger | StateTrigger):
        return raw
    if not isinstance(raw, Mapping):
        where.fail(
            "expected a trigger (http(...), queue(...), cron(...), state(...)) or a dict "
            f"with a 'type', got {type(raw).__name__} {raw!r:.60}"
        )
    kind = raw.get("type")
    builders: dict[str, Callable[[Mapping[str, Any], Where], Trigger]] = {
        "http": build_http,
        "queue": build_queue,
        "cron": build_cron,
        "state": build_state,
    }
    if not isinstance(kind, str) or kind not in builders:
        hint = {"api": "http", "event": "queue"}.get(kind) if isinstance(kind, str) else None
        where.fail(
            f"unknown trigger type {kind!r}; expected one of {sorted(builders)}"
            + (f" (did you mean {hint!r}? 'api'/'event' are 0.x step types)" if hint else ""),
            "type",
        )
    return builders[kind]({k: v for k, v in raw.items() if k != "type"}, where)


def build_http(raw: Mapping[str, Any], where: Where) -> HttpTrigger:
    f.reject_unknown(where, raw, HTTP_KEYS, "an http trigger")
    method = raw.get("method")
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        where.fail(
            f"expected an HTTP method, one of {list(HTTP_METHODS)}, got {method!r}", "method"
        )
    path = raw.get("path")
    if not isinstance(path, str):
        where.fail(f"expected a path starting with '/', like '/pets/:id', got {path!r}", "path")
    bkey, body = f.pick(where, raw, "body", "bodySchema", "body_schema")
    key, query = f.pick(where, raw, "query", "querySchema", "query_schema")
    rkey, response = f.pick(where, raw, "response", "responseSchema", "response_schema")
    timeout = raw.get("timeout")
    try:  # the trigger parses its path, once, into `route`
        return HttpTrigger(
            method=method.upper(),
            path=path,
            body=f.schema(where, bkey or "body", body),
            query=f.schema(where, key or "query", query),
            response=_responses(where, rkey or "response", response),
            timeout=None if timeout is None else f.number(where, "timeout", timeout, strict=True),
        )
    except PathError as exc:
        where.fail(str(exc), "path")


def _responses(where: Where, field: str, value: Any) -> Mapping[int, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        where.fail(f"expected a dict of status code -> schema, got {value!r:.60}", field)
    out: dict[int, Any] = {}
    for status, schema in value.items():
        code = int(status) if isinstance(status, str) and status.isdigit() else status
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            where.fail(f"expected HTTP status codes (100-599) as keys, got {status!r}", field)
        out[code] = f.schema(where, f"{field}[{code}]", schema)
    return out


def build_queue(raw: Mapping[str, Any], where: Where) -> QueueTrigger:
    f.reject_unknown(where, raw, QUEUE_KEYS, "a queue trigger")
    return QueueTrigger(
        topic=f.topic(where, "topic", raw.get("topic")),
        input=f.schema(where, "input", raw.get("input")),
        options=queue_options(where, raw),
    )


def queue_options(where: Where, raw: Mapping[str, Any]) -> Any:
    try:
        return parse_queue_options(raw)
    except OptionError as exc:
        where.fail(exc.message, exc.key)


def check_timezone(where: Where, field: str, value: Any) -> str:
    name = f.text(where, field, value, "an IANA timezone name like 'Europe/Paris'")
    try:
        load_timezone(name)
    except ValueError as exc:
        where.fail(str(exc), field)
    return name


def build_cron(
    raw: Mapping[str, Any], where: Where, *, expression_key: str = "expression"
) -> CronTrigger:
    f.reject_unknown(where, raw, CRON_KEYS, "a cron trigger")
    key, expression = f.pick(where, raw, "expression", "cron")
    key = key or expression_key
    expression = f.text(where, key, expression, "a cron expression like '0 8 * * *'")
    tz_key, tz = f.pick(where, raw, "timezone", "tz")
    timezone = None if tz is None else check_timezone(where, tz_key or "timezone", tz)
    check_cron(where, key, expression, timezone)
    skip_key, skip = f.pick(where, raw, "skip_if_running", "skipIfRunning")
    grace = raw.get("grace")
    return CronTrigger(
        expression=expression,
        timezone=timezone,
        skip_if_running=True
        if skip is None
        else f.flag(where, skip_key or "skip_if_running", skip),
        grace=None if grace is None else f.number(where, "grace", grace, strict=False),
    )


def check_cron(where: Where, field: str, expression: str, timezone: str | None) -> None:
    """The scheduler's own parser decides, so what loads is what runs."""
    try:
        parse_cron(expression, timezone)
    except ValueError as exc:  # its message names the expression, the field and the forms
        where.fail(str(exc), field)


def build_state(raw: Mapping[str, Any], where: Where) -> StateTrigger:
    f.reject_unknown(where, raw, STATE_KEYS, "a state trigger")
    condition = raw.get("condition")
    if condition is not None and not callable(condition):
        where.fail(f"expected a function of the change event, got {condition!r:.60}", "condition")
    if condition is not None:
        check_condition(condition, where)
    return StateTrigger(
        namespace=f.text(where, "namespace", raw.get("namespace"), "a namespace name"),
        filter=_filter(where, raw.get("filter")),
        condition=condition,
        events=_events(where, raw.get("events")),
        options=queue_options(where, raw),
    )


def _filter(where: Where, value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        where.fail(f"expected a dict of field -> value, got {value!r:.60}", "filter")
    for key, item in value.items():
        if not _is_json(item):
            where.fail(f"filter value for {key!r} is not JSON: {item!r:.60}", "filter")
    return dict(value)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _events(where: Where, value: Any) -> tuple[str, ...]:
    if value is None:
        return STATE_EVENTS
    events = (value,) if isinstance(value, str) else value
    if (
        not isinstance(events, list | tuple)
        or not events
        or any(e not in STATE_EVENTS for e in events)
    ):
        where.fail(f"expected some of {list(STATE_EVENTS)}, got {value!r}", "events")
    return tuple(dict.fromkeys(events))
