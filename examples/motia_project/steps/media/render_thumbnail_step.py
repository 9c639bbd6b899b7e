import threading
import time

# Rendering is blocking work, so the handler is a plain function (it runs in a worker
# thread). iii-config.yaml lets the queue run two renders at once. The same step answers
# GET /thumbnails/stats (a step with two triggers).
config = {
    "name": "RenderThumbnail",
    "description": "Renders one thumbnail; reports how many ran at once",
    "triggers": [
        {"type": "queue", "topic": "thumbnail.requested"},
        {"type": "http", "method": "GET", "path": "/thumbnails/stats"},
    ],
    "enqueues": [],
    "flows": ["media"],
}

STATS = {"running": 0, "most_at_once": 0, "done": 0}
_lock = threading.Lock()


def handler(input, ctx):
    if ctx.trigger.type == "http":
        with _lock:
            return {"status": 200, "body": dict(STATS)}
    with _lock:
        STATS["running"] += 1
        STATS["most_at_once"] = max(STATS["most_at_once"], STATS["running"])
    try:
        time.sleep(0.3)  # the render
    finally:
        with _lock:
            STATS["running"] -= 1
            STATS["done"] += 1
    return None
