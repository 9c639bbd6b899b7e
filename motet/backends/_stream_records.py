"""The records of stream storage (Motia's streams): a change, a group's snapshot, and the
checks every backend applies to names before it stores anything.

A stream holds groups; a group holds items by id. Every change of a group (an item created,
updated or deleted, or an ephemeral event sent to it) gets the group's next event id
(`seq`, 1, 2, 3, ... per (stream, group), never reused), so a client that saw event n can
ask for the changes after n. Each backend keeps the last `LOG_LENGTH` changes per group for
that; older ones are gone, and a client that asks for them gets the current items instead.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

from .._envelope import JSON

ChangeKind = Literal["create", "update", "delete", "event"]

# Changes kept per group for resuming clients (Last-Event-ID).
LOG_LENGTH = 1000

# A stream's name is an identifier (it is also `ctx.streams.<name>`); '-' is allowed as in
# Motia's examples (reach such a stream with `ctx.streams["chat-messages"]`).
STREAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")
# Group and item ids come from URLs and handlers: printable, no '/', no spaces.
_KEY = re.compile(r"[^\s/\x00-\x1f\x7f]{1,200}")


@attrs.frozen
class StreamChange:
    """One change of one group, as stored in its log and fanned out to subscribers.

    `data` is the item for create and update, the deleted item for delete, and the event
    (`{"type": ..., "data": ...}`) for an ephemeral `send`; `id` is the item's id (None for
    an event sent to the whole group)."""

    stream: str
    group: str
    seq: int
    kind: ChangeKind
    id: str | None
    data: JSON


@attrs.frozen
class StreamSnapshot:
    """A group's items (id, data), ordered by id, and the event id of the last change they
    include (0 for a group that never changed)."""

    items: list[tuple[str, JSON]]
    seq: int


def check_stream_name(name: object) -> str:
    if not isinstance(name, str) or not STREAM_NAME.fullmatch(name):
        raise ValueError(
            f"stream name must be an identifier (letters, digits, '_' or '-', starting with "
            f"a letter or '_', at most 100 characters), got {name!r}"
        )
    return name


def check_key(what: str, value: object) -> str:
    """A group or item id: 1-200 printable characters without '/' or whitespace."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise ValueError(
            f"stream {what} must be 1-200 printable characters without '/' or whitespace, "
            f"got {value!r}"
        )
    return value


def is_valid_key(value: str) -> bool:
    return bool(_KEY.fullmatch(value))
