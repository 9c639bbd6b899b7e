"""What the pet store steps share: the pet schemas and how to read pets from state.

Pets live in state namespace "pets", keyed by id. A deleted pet stays there, marked
`deleted` with a `purgeAt` time, until the DeletionReaper removes it for good.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from motet import Context

PETS = "pets"  # state namespace
PURGE_AFTER_DAYS = 30  # a soft-deleted pet is purged this long after deletion


@attrs.frozen
class NewPet:
    """The body of POST /pets."""

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    breed: str = attrs.field(validator=attrs.validators.min_len(1))
    # attrs' own validators, not plain functions: /openapi.json repeats them as JSON Schema
    # keywords (minLength, minimum), so a client knows the rules before it is refused.
    age: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen
class Pet:
    """A pet as the API returns it and as the `pet-created` message carries it."""

    id: str
    name: str
    breed: str
    age: int
    createdAt: str  # field names are the JSON API's camelCase


async def active_pets(ctx: Context) -> list[dict[str, Any]]:
    """Every pet that is not soft-deleted, ordered by id."""
    return [pet for pet in await ctx.state.list(PETS) if not pet.get("deleted")]


def parse_time(text: str) -> datetime:
    """An ISO 8601 time written by these steps (always with a UTC offset)."""
    return datetime.fromisoformat(text)
