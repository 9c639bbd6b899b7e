config = {
    "type": "api",
    "name": "RequestThumbnails",
    "description": "Queues one render per image",
    "method": "POST",
    "path": "/thumbnails",
    "emits": ["thumbnail.requested"],
    "flows": ["media"],
}


async def handler(req, context):
    images = req.body["images"]
    for image in images:
        await context.emit({"topic": "thumbnail.requested", "data": {"image": image}})
    return {"status": 202, "body": {"queued": len(images)}}
