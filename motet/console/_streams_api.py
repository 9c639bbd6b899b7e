"""The stream inspector's operator endpoints: `GET /_motet/streams` (every declared stream,
its groups and live subscribers) and `GET /_motet/streams/{name}/{group}` (a group's items
and last event id). Read-only: items are written by handlers, never from the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._op import BadRequest, OpReply, OpRequest, reply

if TYPE_CHECKING:
    from ..streams import StreamService
    from ._op import Operated


def _service(op: Operated) -> StreamService | None:
    return getattr(op.runtime, "streams", None)


async def streams(op: Operated, request: OpRequest) -> OpReply:
    service = _service(op)
    rest = request.path.removeprefix("/streams").strip("/")
    if service is None or not service.configs:
        if rest:
            raise BadRequest("the project declares no stream", status=404)
        return reply({"streams": [], "hub": None})
    if rest:
        return await _group(service, rest)
    out = []
    for name in sorted(service.configs):
        config = service.configs[name]
        groups = await service.storage().stream_groups(name) if service.backend else []
        out.append(
            {
                "name": name,
                "public": config.public,
                "access_hook": config.can_access is not None,
                "storage": config.storage_type,
                "file": str(config.file) if config.file else None,
                "groups": groups,
                "subscribers": service.hub.subscriber_count(name),
            }
        )
    stats = service.hub.statistics()
    return reply(
        {
            "streams": out,
            "hub": {
                "subscribers": stats.subscribers,
                "delivered": stats.delivered,
                "dropped": stats.dropped,
                "capacity": service.hub.capacity,
            },
        }
    )


async def _group(service: StreamService, rest: str) -> OpReply:
    name, _, group = rest.partition("/")
    if service.config(name) is None:
        raise BadRequest(f"no stream named {name!r}", status=404)
    if not group:
        return reply({"stream": name, "groups": await service.storage().stream_groups(name)})
    snapshot = await service.storage().stream_items(name, group)
    return reply(
        {
            "stream": name,
            "group": group,
            "event_id": snapshot.seq,
            "items": [{"id": k, "value": v} for k, v in snapshot.items],
            "subscribers": service.hub.subscriber_count(name, group),
        }
    )
