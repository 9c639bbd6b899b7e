"""PUT /inventory/:sku: set the stock and unit price (in cents) of a product."""

from __future__ import annotations

from typing import Any

import attrs

from motet import Context, Request, http


@attrs.frozen
class Stock:
    units: int = attrs.field(validator=attrs.validators.ge(0))
    price: int = attrs.field(validator=attrs.validators.ge(0))


config = {
    "name": "RestockInventory",
    "description": "Set a product's stock and price",
    "triggers": [http("PUT", "/inventory/:sku", body=Stock)],
    "flows": ["checkout"],
}


async def handler(request: Request, ctx: Context) -> dict[str, Any]:
    sku = request.path_params["sku"]
    stock = await ctx.state.set("inventory", sku, request.body)
    return {"status": 200, "body": {"sku": sku, **stock}}
