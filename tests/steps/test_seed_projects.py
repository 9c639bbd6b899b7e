"""The seeds' examples, written as Python step files, load as their authors meant."""

from __future__ import annotations

from motet.steps import (
    CronTrigger,
    HttpTrigger,
    QueueOverrides,
    QueueTrigger,
    StateTrigger,
    load_steps,
)

from .conftest import WriteFiles

PET_STORE_0X = {
    "steps/create_pet_step.py": """
        import attrs

        @attrs.frozen
        class NewPet:
            name: str
            breed: str
            age: int

        @attrs.frozen
        class Pet:
            id: str
            name: str
            breed: str
            age: int

        config = {
            "type": "api",
            "name": "CreatePet",
            "description": "Create a new pet in the store",
            "method": "POST",
            "path": "/pets",
            "bodySchema": NewPet,
            "responseSchema": {200: Pet},
            "emits": ["pet-created"],
        }

        async def handler(req, ctx):
            return {"status": 200, "body": {}}
    """,
    "steps/adoption_followup_step.py": """
        config = {
            "type": "event",
            "name": "AdoptionFollowUp",
            "description": "Send welcome message when a pet is created",
            "subscribes": ["pet-created"],
        }

        async def handler(input, ctx):
            ctx.logger.info("Adoption welcome message sent", petId=input["id"])
    """,
    "steps/daily-feeding-reminder.step.py": """
        config = {
            "type": "cron",
            "name": "DailyFeedingReminder",
            "cron": "0 8 * * *",
        }

        async def handler(ctx):
            return None
    """,
}

MESSAGES_1_0 = {
    "steps/send_message_step.py": """
        from typing import Literal

        import attrs
        from motet.steps import http

        @attrs.frozen
        class Message:
            text: str
            priority: Literal["low", "normal", "high"] = "normal"
            metadata: dict[str, str] | None = None

        config = {
            "name": "SendMessage",
            "triggers": [http("POST", "/messages", body=Message)],
            "enqueues": ["message.sent"],
        }

        async def handler(request, ctx):
            return {"status": 200, "body": {"status": "enqueued"}}
    """,
    "steps/process_message_step.py": """
        from dataclasses import dataclass
        from motet.steps import queue

        @dataclass
        class Sent:
            messageId: str
            text: str
            priority: str

        config = {
            "name": "ProcessMessage",
            "triggers": [
                queue("message.sent", input=Sent, max_retries=3, retry_delay=5000,
                      concurrency=5, dead_letter_queue="message.failed"),
            ],
            "enqueues": ["message.processed"],
        }

        async def handler(input, ctx):
            return None
    """,
    "steps/cleanup_messages_step.py": """
        config = {
            "name": "CleanupMessages",
            "triggers": [{"type": "cron", "expression": "0 0 2 * * * *"}],
        }

        async def handler(_input, ctx):
            return None
    """,
    "steps/notify_completion_step.py": """
        config = {
            "name": "NotifyCompletion",
            "triggers": [
                {"type": "state", "namespace": "messages", "filter": {"status": "processed"}}
            ],
        }

        async def handler(input, ctx):
            return None
    """,
}


def test_pet_store_0x(project: WriteFiles) -> None:
    steps = {s.name: s for s in load_steps(project(PET_STORE_0X))}
    assert list(steps) == ["AdoptionFollowUp", "CreatePet", "DailyFeedingReminder"]
    create = steps["CreatePet"]
    (trigger,) = create.of_type(HttpTrigger)
    assert (trigger.method, trigger.path, trigger.body.__name__) == ("POST", "/pets", "NewPet")
    assert create.enqueues == ("pet-created",)
    assert steps["AdoptionFollowUp"].triggers == (QueueTrigger(topic="pet-created"),)
    assert steps["DailyFeedingReminder"].triggers == (CronTrigger(expression="0 8 * * *"),)


def test_background_worker_1_0(project: WriteFiles) -> None:
    steps = {s.name: s for s in load_steps(project(MESSAGES_1_0))}
    assert sorted(steps) == ["CleanupMessages", "NotifyCompletion", "ProcessMessage", "SendMessage"]
    (worker,) = steps["ProcessMessage"].of_type(QueueTrigger)
    assert worker.options == QueueOverrides(
        max_retries=3, retry_delay=5000, concurrency=5, dead_letter_queue="message.failed"
    )
    assert steps["CleanupMessages"].triggers == (CronTrigger(expression="0 0 2 * * * *"),)
    assert steps["NotifyCompletion"].triggers == (
        StateTrigger(namespace="messages", filter={"status": "processed"}),
    )
