"""Both config forms load into the same Step; every spelling the seeds use is accepted."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from motet.steps import (
    CronTrigger,
    HttpTrigger,
    QueueOverrides,
    StateTrigger,
    Step,
    cron,
    http,
    load_step,
    queue,
    state,
    step,
)


@attrs.frozen
class NewPet:
    name: str
    age: int


@attrs.frozen
class Pet:
    id: str
    name: str


async def http_handler(request: Any, ctx: Any) -> Any:
    return {"status": 200, "body": {}}


async def input_handler(input: Any, ctx: Any) -> None:
    return None


def cron_handler(ctx: Any) -> None:
    return None


def same_loaded(a: Step, b: Step) -> None:
    assert a.triggers == b.triggers
    assert a.enqueues == b.enqueues
    assert a.name == b.name
    assert a.flows == b.flows
    assert a.description == b.description


def test_api_step_equals_http_trigger() -> None:
    old = load_step(
        {
            "type": "api",
            "name": "CreatePet",
            "description": "Create a new pet in the store",
            "method": "POST",
            "path": "/pets",
            "bodySchema": NewPet,
            "responseSchema": {200: Pet},
            "emits": ["pet-created"],
            "flows": ["pets"],
        },
        http_handler,
    )
    new = load_step(
        {
            "name": "CreatePet",
            "description": "Create a new pet in the store",
            "triggers": [http("POST", "/pets", body=NewPet, response={200: Pet})],
            "enqueues": ["pet-created"],
            "flows": ["pets"],
        },
        http_handler,
    )
    as_dict = load_step(
        {
            "name": "CreatePet",
            "description": "Create a new pet in the store",
            "triggers": [
                {
                    "type": "http",
                    "method": "post",
                    "path": "/pets",
                    "bodySchema": NewPet,
                    "responseSchema": {"200": Pet},
                }
            ],
            "emits": [{"topic": "pet-created", "label": "new pet"}],
            "flows": ["pets"],
        },
        http_handler,
    )
    same_loaded(old, new)
    same_loaded(new, as_dict)
    assert new.triggers == (
        HttpTrigger(method="POST", path="/pets", body=NewPet, response={200: Pet}),
    )


def test_event_step_equals_queue_triggers_with_options() -> None:
    old = load_step(
        {
            "type": "event",
            "name": "ProcessMessage",
            "subscribes": ["message.sent", "message.retry"],
            "input": Pet,
            "emits": ["message.processed"],
            "maxRetries": 3,
            "retryDelay": 5000,
            "concurrency": 5,
            "deadLetterQueue": "message.failed",
        },
        input_handler,
    )
    options = {
        "max_retries": 3,
        "retry_delay": 5000,
        "concurrency": 5,
        "dead_letter_queue": "message.failed",
    }
    new = load_step(
        {
            "name": "ProcessMessage",
            "triggers": [
                queue("message.sent", input=Pet, **options),
                {"type": "queue", "topic": "message.retry", "input": Pet, **options},
            ],
            "enqueues": ["message.processed"],
        },
        input_handler,
    )
    same_loaded(old, new)
    expected = QueueOverrides(
        max_retries=3, retry_delay=5000, concurrency=5, dead_letter_queue="message.failed"
    )
    assert [t.options for t in new.triggers] == [expected, expected]  # type: ignore[union-attr]


def test_cron_step_equals_cron_trigger() -> None:
    old = load_step(
        {"type": "cron", "name": "Daily", "cron": "0 8 * * *", "timezone": "Europe/Paris"},
        cron_handler,
    )
    new = load_step(
        {"name": "Daily", "triggers": [cron("0 8 * * *", tz="Europe/Paris")]}, cron_handler
    )
    as_dict = load_step(
        {
            "name": "Daily",
            "triggers": [{"type": "cron", "expression": "0 8 * * *", "tz": "Europe/Paris"}],
        },
        cron_handler,
    )
    same_loaded(old, new)
    same_loaded(new, as_dict)
    assert new.triggers == (CronTrigger(expression="0 8 * * *", timezone="Europe/Paris"),)


def test_cron_forms_from_the_seeds() -> None:
    six = cron("30 0 8 * * *")
    seven = load_step(
        {"name": "CleanupMessages", "triggers": [{"type": "cron", "expression": "0 0 2 * * * *"}]},
        input_handler,
    )
    assert six.expression == "30 0 8 * * *"
    assert seven.triggers == (CronTrigger(expression="0 0 2 * * * *"),)
    opts = cron("*/5 * * * *", skip_if_running=False, grace=0)
    assert (opts.skip_if_running, opts.grace) == (False, 0.0)
    assert cron("* * * * *", timezone="UTC").timezone == "UTC"


def test_state_trigger_from_the_seeds() -> None:
    loaded = load_step(
        {
            "name": "NotifyCompletion",
            "triggers": [
                {"type": "state", "namespace": "messages", "filter": {"status": "processed"}}
            ],
        },
        input_handler,
    )
    assert loaded.triggers == (StateTrigger(namespace="messages", filter={"status": "processed"}),)

    def is_done(event: Any) -> bool:
        return bool(event["value"].get("done"))

    built = state("jobs", condition=is_done, events=["created", "updated"], maxRetries=1)
    assert built.condition is is_done
    assert built.events == ("created", "updated")
    assert built.options == QueueOverrides(max_retries=1)
    assert state("jobs", events="deleted").events == ("deleted",)


def test_noop_step_has_no_triggers_and_virtual_topics() -> None:
    loaded = load_step(
        {
            "type": "noop",
            "name": "HumanReview",
            "virtualSubscribes": ["review.requested"],
            "virtualEmits": [{"topic": "review.done", "label": "approved"}],
        },
        None,
    )
    assert loaded.triggers == ()
    assert loaded.virtual_subscribes == ("review.requested",)
    assert loaded.virtual_emits == ("review.done",)
    assert loaded.handler() is None  # the stand-in is callable and does nothing


def test_multi_trigger_step_from_the_seeds() -> None:
    definition = step(
        {
            "name": "ProcessOrder",
            "triggers": [
                queue("process-order", input=Pet),
                http("POST", "/process-order", body_schema=Pet),
            ],
            "enqueues": ["notification"],
        },
        input_handler,
    )
    loaded = load_step(definition)
    assert [t.type for t in loaded.triggers] == ["queue", "http"]
    assert loaded.of_type(HttpTrigger)[0].body is Pet
    assert loaded.handler is input_handler


def test_emits_and_enqueues_are_aliases_and_deduplicated() -> None:
    a = load_step(
        {"type": "event", "name": "A", "subscribes": ["x"], "enqueues": ["b", "b", "c"]},
        input_handler,
    )
    assert a.enqueues == ("b", "c")


def test_step_is_frozen() -> None:
    loaded = load_step({"type": "event", "name": "A", "subscribes": ["x"]}, input_handler)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        loaded.name = "B"  # type: ignore[misc]


def test_http_aliases_and_options() -> None:
    t = http("get", "/pets/{id}/toys/:toy", query=NewPet, timeout=5, bodySchema=None)
    assert (t.method, t.path, t.query, t.timeout) == ("GET", "/pets/{id}/toys/:toy", NewPet, 5.0)
    assert http("POST", "/p", bodySchema=Pet).body is Pet
    assert http("POST", "/p", body_schema=Pet).body is Pet
    assert http("DELETE", "/").path == "/"


def test_queue_options_all_spellings() -> None:
    t = queue(
        "jobs",
        maxRetries=0,
        retryDelay=0,
        maxRetryDelay=60_000,
        maxConcurrency=2,
        deadLetterQueue="jobs.dead",
        strategy="fifo",
        timeout=2.5,
        lease=10,
    )
    assert t.options == QueueOverrides(
        max_retries=0,
        retry_delay=0,
        max_retry_delay=60_000,
        concurrency=2,
        dead_letter_queue="jobs.dead",
        strategy="fifo",
        timeout=2.5,
        lease=10.0,
    )
    assert queue("jobs", strategy="priority").options.strategy == "priority"
