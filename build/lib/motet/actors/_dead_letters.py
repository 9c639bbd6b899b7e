"""How a message's life ends unhandled: which failures are final, and what a subscription's
dead-letter topic receives.

Every unhandled end (attempts exhausted, every attempt's lease lost, input invalid, a
condition failing past its retries, a `NonRetryable`) goes through the backend's `bury`,
which keeps the dead letter in the store and, when the subscription names a
`dead_letter_queue`, publishes `announcement(...)` there in the same atomic write. The topic
is an extra copy for steps that react to failures; the store is what `motet dlq` lists,
re-drives and discards.
"""

from __future__ import annotations

from .._envelope import DeadLetter, Envelope


def storable(text: str) -> str:
    """`text` with every lone surrogate written as its `\\udcXX` escape. An exception's
    message may hold one (a file name decoded with surrogateescape); no backend can store
    that as text, and an error line or traceback that cannot be stored would leave the
    message in its queue forever instead of in dead letters."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def announcement(topic: str, step: str, letter: DeadLetter) -> Envelope:
    """What the dead-letter topic receives: the message, why it failed (error line, attempts,
    the last attempt's traceback) and the dead letter's id, to re-drive or discard it. Its
    message id is the dead letter's, so building it twice gives the same message."""
    failed = letter.envelope
    return Envelope(
        topic=topic,
        data={
            "topic": failed.topic,
            "step": step,
            "message_id": failed.id,
            "data": failed.data,
            "error": letter.error,
            "attempts": letter.attempts,
            "traceback": letter.traceback,
            "dead_letter_id": letter.id,
        },
        trace_id=failed.trace_id,
        id=letter.id,
        group=failed.group,
        created_at=letter.failed_at,
    )
