"""Every loading error names the file, the step and the field, and says what was expected."""

from __future__ import annotations

import functools
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest

from motet._errors import StepDefinitionError
from motet.steps import cron, http, load_step, queue, state

FILE = Path("steps/pets_step.py")


@attrs.frozen
class Pet:
    name: str


class NotASchema:
    pass


async def two(input: Any, ctx: Any) -> None:
    return None


def one(ctx: Any) -> None:
    return None


def api(**extra: Any) -> dict[str, Any]:
    return {"type": "api", "name": "S", "method": "GET", "path": "/pets", **extra}


def event(**extra: Any) -> dict[str, Any]:
    return {"type": "event", "name": "S", "subscribes": ["a"], **extra}


def v1(*triggers: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "S", "triggers": list(triggers), **extra}


CASES: list[tuple[str, Any, Any, str | None, str]] = [
    # (id, config, handler, field, message pattern)
    ("config not a dict", ["name"], two, "config", "config must be a dict, got list"),
    ("missing name", {"type": "event", "subscribes": ["a"]}, two, "name", "no 'name'"),
    ("empty name", event(name="  "), two, "name", "non-empty string, got '  '"),
    ("name not a string", event(name=3), two, "name", "non-empty string, got 3"),
    ("name with @", event(name="a@b"), two, "name", "must not contain '@'"),
    ("both forms", {**event(), "triggers": []}, two, "triggers", "both 'type'.*and 'triggers'"),
    ("neither form", {"name": "S"}, two, "triggers", "no 'triggers' .* and no 'type'"),
    ("unknown type", event(type="job"), two, "type", "unknown step type 'job'; expected one of"),
    ("1.0 type in 0.x", event(type="queue"), two, "type", "did you mean 'event'"),
    ("unhashable type", event(type=["api"]), two, "type", "unknown step type"),
    (
        "unknown 0.x key",
        event(subscribe=["a"]),
        two,
        "subscribe",
        r"unknown key 'subscribe' in a 0.x 'event' step config; allowed: .*subscribes",
    ),
    ("key of another type", api(subscribes=["a"]), two, "subscribes", "unknown key 'subscribes'"),
    (
        "unknown 1.0 keys",
        v1(queue("a"), emit=[], flow=[]),
        two,
        "emit",
        "unknown keys 'emit', 'flow' in a step config; allowed: ",
    ),
    ("bad method", api(method="FETCH"), two, "method", "expected an HTTP method.*got 'FETCH'"),
    ("method not a string", api(method=None), two, "method", "got None"),
    ("relative path", api(path="pets"), two, "path", "starting with '/'.*got 'pets'"),
    ("path with space", api(path="/my pets"), two, "path", "no spaces"),
    ("path with query", api(path="/pets?x=1"), two, "path", "no spaces, query"),
    ("nameless param", api(path="/pets/:"), two, "path", "needs a name"),
    ("twice param", api(path="/a/:id/b/{id}"), two, "path", "'id' appears twice"),
    ("unbalanced brace", api(path="/a/{id"), two, "path", "unbalanced braces"),
    ("http timeout", api(timeout=0), two, "timeout", r"number of seconds > 0, got 0"),
    ("bad response status", api(responseSchema={"ok": Pet}), two, "responseSchema", "status codes"),
    (
        "bad response schema",
        api(response_schema={200: {"type": "objekt"}}),
        two,
        "response_schema[200]",
        r"not a valid JSON Schema: .* \(at /type\)",
    ),
    (
        "bad body schema",
        api(bodySchema=NotASchema),
        two,
        "bodySchema",
        "NotASchema is not a supported schema type",
    ),
    ("body given twice", api(body=Pet, bodySchema=Pet), two, "bodySchema", "given twice"),
    (
        "bad cron",
        {"type": "cron", "name": "S", "cron": "61 * * * *"},
        one,
        "cron",
        "minute field '61' is not valid",
    ),
    (
        "cron 4 fields",
        v1({"type": "cron", "expression": "* * * *"}),
        one,
        "triggers[0].expression",
        "4 field",
    ),
    (
        "cron missing",
        v1({"type": "cron"}),
        one,
        "triggers[0].expression",
        "expected a cron expression",
    ),
    (
        "cron twice",
        v1({"type": "cron", "cron": "* * * * *", "expression": "* * * * *"}),
        one,
        "triggers[0].cron",
        "given twice",
    ),
    (
        "bad timezone",
        {"type": "cron", "name": "S", "cron": "0 8 * * *", "timezone": "Paris"},
        one,
        "timezone",
        "unknown timezone 'Paris'",
    ),
    (
        "bad tz",
        v1({"type": "cron", "expression": "0 8 * * *", "tz": "Mars/Base"}),
        one,
        "triggers[0].tz",
        "unknown timezone",
    ),
    (
        "bad skip flag",
        v1({"type": "cron", "expression": "* * * * *", "skipIfRunning": "no"}),
        one,
        "triggers[0].skipIfRunning",
        "true or false",
    ),
    (
        "negative grace",
        v1({"type": "cron", "expression": "* * * * *", "grace": -1}),
        one,
        "triggers[0].grace",
        ">= 0",
    ),
    ("no subscribes", {"type": "event", "name": "S"}, two, "subscribes", "needs 'subscribes'"),
    ("empty subscribes", event(subscribes=[]), two, "subscribes", "at least one topic"),
    (
        "lone string subscribes",
        event(subscribes="a.b"),
        two,
        "subscribes",
        "list of strings, got 'a.b'",
    ),
    ("empty topic", event(subscribes=["a", ""]), two, "subscribes[1]", "topic name"),
    ("topic not a string", event(subscribes=[5]), two, "subscribes[0]", "topic name .* got 5"),
    ("reserved topic", event(emits=["cron:x"]), two, "emits[0]", "reserved for motet"),
    ("topic whitespace", event(emits=[" a"]), two, "emits[0]", "whitespace"),
    (
        "emits dict unknown key",
        event(emits=[{"topic": "b", "color": "red"}]),
        two,
        "emits[0].color",
        "unknown key 'color'",
    ),
    (
        "emits dict without topic",
        event(emits=[{"label": "b"}]),
        two,
        "emits[0].topic",
        "topic name",
    ),
    ("emits not a list", event(emits="b"), two, "emits", "list of topics"),
    ("emits and enqueues", event(emits=["b"], enqueues=["c"]), two, "emits", "given twice"),
    (
        "subscribed twice",
        event(subscribes=["a", "a"]),
        two,
        "triggers",
        "subscribes to queue 'a' twice",
    ),
    (
        "bad input schema",
        event(input={"required": "name"}),
        two,
        "input",
        "not a valid JSON Schema",
    ),
    (
        "bad queue option type",
        event(maxRetries="3"),
        two,
        "maxRetries",
        "expected an integer, got '3'",
    ),
    ("bool queue option", event(concurrency=True), two, "concurrency", "expected an integer"),
    ("zero concurrency", event(maxConcurrency=0), two, "maxConcurrency", ">= 1"),
    ("negative delay", event(retry_delay=-5), two, "retry_delay", r">= 0 \(milliseconds\)"),
    ("bad strategy", event(strategy="lifo"), two, "strategy", "one of .*'fifo'.* got 'lifo'"),
    ("empty dlq", event(deadLetterQueue=""), two, "deadLetterQueue", "topic name"),
    ("bad lease", event(lease=0), two, "lease", "> 0"),
    ("option twice", event(max_retries=1, maxRetries=2), two, "maxRetries", "given twice"),
    ("triggers not a list", v1(), two, "triggers", "no triggers"),
    (
        "triggers a dict",
        {"name": "S", "triggers": {"type": "queue", "topic": "a"}},
        two,
        "triggers",
        "list of triggers",
    ),
    ("trigger not a dict", v1("queue:a"), two, "triggers[0]", "expected a trigger"),
    (
        "trigger without type",
        v1({"topic": "a"}),
        two,
        "triggers[0].type",
        "unknown trigger type None",
    ),
    (
        "0.x type as trigger",
        v1({"type": "event", "topic": "a"}),
        two,
        "triggers[0].type",
        "did you mean 'queue'",
    ),
    (
        "unknown trigger key",
        v1({"type": "queue", "topic": "a", "retries": 3}),
        two,
        "triggers[0].retries",
        r"unknown key 'retries' in a queue trigger; allowed: .*maxRetries",
    ),
    (
        "second trigger field",
        v1(queue("a"), {"type": "http", "method": "GET", "path": "x"}),
        two,
        "triggers[1].path",
        "starting with '/'",
    ),
    ("state no namespace", v1({"type": "state"}), two, "triggers[0].namespace", "namespace"),
    (
        "state filter not dict",
        v1({"type": "state", "namespace": "m", "filter": ["a"]}),
        two,
        "triggers[0].filter",
        "dict of field -> value",
    ),
    (
        "state filter not json",
        v1({"type": "state", "namespace": "m", "filter": {"a": object()}}),
        two,
        "triggers[0].filter",
        "not JSON",
    ),
    (
        "state condition",
        v1({"type": "state", "namespace": "m", "condition": "x > 1"}),
        two,
        "triggers[0].condition",
        "function",
    ),
    (
        "state events",
        v1({"type": "state", "namespace": "m", "events": []}),
        two,
        "triggers[0].events",
        "some of",
    ),
    ("state twice", v1(state("m"), state("m")), two, "triggers", "state 'm' twice"),
    ("flows not a list", event(flows="pets"), two, "flows", "list of strings"),
    ("description not a string", event(description=["x"]), two, "description", "expected a string"),
    # handlers
    ("no handler", event(), None, "handler", "no handler"),
    ("handler not callable", event(), "handler", "handler", "must be a function, got str"),
    (
        "http handler one arg",
        api(),
        one,
        "handler",
        r"def one\(ctx: 'Any'\) -> 'None' cannot be called as \(request, ctx\)",
    ),
    (
        "queue handler three args",
        event(),
        lambda a, b, c: None,
        "handler",
        r"cannot be called as \(input, ctx\)",
    ),
    (
        "cron handler three args",
        v1(cron("* * * * *")),
        lambda a, b, c: None,
        "handler",
        r"\(ctx\) or \(input, ctx\)",
    ),
    ("multi trigger one arg", v1(queue("a"), http("GET", "/a")), one, "handler", "ctx.trigger"),
    ("generator handler", event(), None, "handler", "generator"),
    ("keyword only", event(), None, "handler", "keyword-only parameters \\(db\\)"),
]


async def _agen(input: Any, ctx: Any) -> Any:
    yield input


def _kwonly(input: Any, ctx: Any, *, db: Any) -> None:
    return None


_SPECIAL = {"generator handler": _agen, "keyword only": _kwonly}


@pytest.mark.parametrize(
    ("config", "handler", "field", "pattern"),
    [pytest.param(c, h, f, p, id=i) for i, c, h, f, p in CASES],
)
def test_loading_error(
    request: pytest.FixtureRequest, config: Any, handler: Any, field: str | None, pattern: str
) -> None:
    handler = _SPECIAL.get(request.node.callspec.id, handler)
    with pytest.raises(StepDefinitionError, match=pattern) as info:
        load_step(config, handler, file=FILE)
    err = info.value
    assert err.file == FILE
    assert err.field == field
    assert str(err).startswith(str(FILE))
    if isinstance(config, dict) and isinstance(config.get("name"), str) and config["name"] == "S":
        assert err.step == "S"
        assert "step 'S'" in str(err)


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(two, id="async def"),
        pytest.param(lambda input, ctx: None, id="def"),
        pytest.param(lambda *args: None, id="*args"),
        pytest.param(lambda *args, **kwargs: None, id="*args, **kwargs"),
        pytest.param(lambda input, ctx, extra=None: None, id="extra default"),
        pytest.param(functools.partial(lambda db, input, ctx: None, "db"), id="partial"),
        pytest.param(
            type("H", (), {"__call__": lambda self, input, ctx: None})(), id="callable object"
        ),
        pytest.param(print, id="builtin"),
    ],
)
def test_accepted_queue_handlers(handler: Any) -> None:
    assert load_step(event(), handler).handler is handler


@pytest.mark.parametrize("handler", [one, two, lambda ctx, extra=None: None, lambda *a: None])
def test_accepted_cron_handlers(handler: Any) -> None:
    load_step({"type": "cron", "name": "C", "cron": "* * * * *"}, handler)


def test_constructor_errors_have_no_file_but_a_field() -> None:
    with pytest.raises(StepDefinitionError) as info:
        queue("jobs", maxRetries=-1)
    assert (info.value.file, info.value.step, info.value.field) == (None, None, "maxRetries")
    assert str(info.value) == "field 'maxRetries': expected an integer >= 0, got -1"
    with pytest.raises(StepDefinitionError, match="unknown key 'retries' in a queue trigger"):
        queue("jobs", retries=3)
    with pytest.raises(StepDefinitionError, match="unknown key 'tz_name' in a cron trigger"):
        cron("* * * * *", tz_name="UTC")
    with pytest.raises(StepDefinitionError, match="unknown key 'headers' in an http trigger"):
        http("GET", "/", headers={})


def test_typeddict_not_required_under_future_annotations_is_refused() -> None:
    # Python 3.11 cannot see NotRequired[...] in string annotations, so cattrs would demand
    # the key; refusing the schema at load beats rejecting every message later.
    source = (
        "from __future__ import annotations\n"
        "from typing import NotRequired, TypedDict\n"
        "class Order(TypedDict):\n    id: str\n    note: NotRequired[str]\n"
    )
    module = types.ModuleType("motet_test_td_schema")
    sys.modules[module.__name__] = module
    try:
        exec(compile(source, "td_schema.py", "exec"), module.__dict__)
        if "note" not in module.Order.__required_keys__:  # pragma: no cover - Python >= 3.12?
            pytest.skip("this Python sees NotRequired in string annotations")
        with pytest.raises(StepDefinitionError, match=r"Order.note is NotRequired\[...\]"):
            queue("orders", input=module.Order)
    finally:
        del sys.modules[module.__name__]


def test_unresolvable_annotation_is_refused() -> None:
    @attrs.frozen
    class Broken:
        owner: Nowhere  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(StepDefinitionError, match=r"cannot resolve the annotations of .*Broken"):
        queue("a", input=Broken)


def test_dict_with_int_keys_is_refused() -> None:
    with pytest.raises(StepDefinitionError, match="object keys are strings in JSON"):
        queue("a", input=dict[int, str])
