import asyncio
import random


async def fetch_price(symbol: str, venue: str) -> float:
    # Stands in for an asyncio client (aiohttp, redis.asyncio, asyncpg).
    await asyncio.sleep(random.uniform(0.01, 0.05))
    return round(100 + random.uniform(-1, 1), 2)


# Motia 0.x form; the handler awaits asyncio code, as Motia's Python handlers do.
config = {
    "type": "api",
    "name": "GetQuote",
    "description": "Best price across venues, fetched concurrently",
    "method": "GET",
    "path": "/quotes/:symbol",
    "emits": [],
    "flows": ["quotes"],
}


async def handler(req, context):
    symbol = req.get("pathParams", {})["symbol"].upper()
    venues = ["north", "south", "east"]
    prices = await asyncio.gather(*(fetch_price(symbol, venue) for venue in venues))
    await asyncio.sleep(0)
    context.logger.info("Quote served", {"symbol": symbol})
    return {
        "status": 200,
        "body": {
            "symbol": symbol,
            "best": min(prices),
            "venues": dict(zip(venues, prices, strict=True)),
        },
    }
