"""GET /pets: the pets that are not deleted, one page at a time, ordered by id.

`?limit=` sets the page size (default 50, at most 200); `?after=<id>` starts after that
pet. When more pets follow, the `Link` header names the next page (RFC 8288,
`rel="next"`). A page size keeps the answer bounded however many pets the store holds: an
unbounded list is slow to build and lets a client that reads slowly pin it in memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import attrs

from motet import Context, Request, http
from steps.pet_store.pets import active_pets

DEFAULT_PAGE = 50
MAX_PAGE = 200


@attrs.frozen
class PageQuery:
    limit: int = attrs.field(
        default=DEFAULT_PAGE, validator=[attrs.validators.ge(1), attrs.validators.le(MAX_PAGE)]
    )
    after: str = ""


config = {
    "name": "ListPets",
    "description": "List the pets in the store, a page at a time",
    "triggers": [http("GET", "/pets", query=PageQuery)],
    "flows": ["pet-store"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    # The gateway validated the query against PageQuery (limit is an int in 1..200).
    limit = int(str(request.query.get("limit", DEFAULT_PAGE)))
    after = str(request.query.get("after", ""))
    pets = sorted(await active_pets(ctx), key=lambda pet: pet["id"])
    if after:
        pets = [pet for pet in pets if pet["id"] > after]
    page = pets[:limit]
    headers = {}
    if len(pets) > limit:
        following = urlencode({"limit": limit, "after": page[-1]["id"]})
        headers["link"] = f'</pets?{following}>; rel="next"'
    return {"status": 200, "body": page, "headers": headers}
