"""The operator's JSON endpoints under `/_motet/...`, read by the console (and by scripts).

Each endpoint is `async (Operated, OpRequest) -> OpReply` (`_op`); wrong input raises
`BadRequest`, which the operator answers as a 400 problem. Nothing here is on a handler's
path, and the operator loads this module for the first operator request, not at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._convert import unstructure
from .._envelope import JSON, check_name, new_id
from .._state_writes import StateWrite
from .._status import MessageStatus, check_message_id, status_json
from ..observe import LogQuery, SpanQuery, flow_graph
from ..steps._model import HttpTrigger
from ._op import BadRequest as BadRequest
from ._op import Endpoint as Endpoint
from ._op import Operated as Operated
from ._op import OpReply as OpReply
from ._op import OpRequest as OpRequest
from ._op import reply as reply

if TYPE_CHECKING:
    from ..actors._rate_gate import Throttling
    from ..observe import Telemetry

CRON_PREVIEW = 3  # next fire times shown per cron step
MAX_IDS = 1_000  # ids per re-drive / discard call


def _telemetry(op: Operated) -> Telemetry:
    if op.telemetry is None:
        raise BadRequest(
            "telemetry is off for this runtime (served with telemetry=False); "
            "logs, traces and metrics are not recorded",
            status=503,
        )
    return op.telemetry


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")


async def health(op: Operated, request: OpRequest) -> OpReply:
    depth = await op.runtime.backend.depth()  # proves the backend answers (reads)
    telemetry = op.telemetry
    # Writes failing (a full disk, Redis away) while the runtime backs off and retries.
    failure = getattr(op.runtime.backend, "write_failure", None)
    return reply(
        {
            "status": "ok" if failure is None else "degraded",
            "backend": op.runtime.backend.name,
            "backend_write_failure": failure,
            "steps": len(op.runtime.steps),
            "subscriptions": len(op.runtime.subscriptions),
            "urls": list(op.runtime.urls),
            "pending": sum(d.pending for d in depth.values()),
            "dead": sum(d.dead for d in depth.values()),
            "in_flight": sum(op.runtime.running().values()),
            "time": op.runtime.clock.now(),
            "telemetry": dict(telemetry.statistics()) if telemetry is not None else None,
        }
    )


async def flows(op: Operated, request: OpRequest) -> OpReply:
    dlqs = {
        s.step: s.options.dead_letter_queue
        for s in op.runtime.subscriptions
        if s.options.dead_letter_queue
    }
    return reply(flow_graph(op.runtime.steps, request.text("flow"), dead_letter_queues=dlqs))


async def routes(op: Operated, request: OpRequest) -> OpReply:
    out = []
    for step in op.runtime.steps:
        for trigger in step.of_type(HttpTrigger):
            out.append(
                {
                    "step": step.name,
                    "method": trigger.method,
                    "path": trigger.path,
                    "body": trigger.body is not None,
                    "description": step.description,
                }
            )
    out.sort(key=lambda r: (r["path"], r["method"]))
    return reply({"routes": out})


async def logs(op: Operated, request: OpRequest) -> OpReply:
    try:
        query = LogQuery(
            after=request.number("after"),
            trace_id=request.text("trace_id"),
            step=request.text("step"),
            level=request.text("level"),
            text=request.text("q"),
            since=request.number("since", float),
            until=request.number("until", float),
            limit=request.limit(200),
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    lines = await _telemetry(op).logs(query)
    return reply(
        {
            "logs": unstructure(lines),
            "cursor": lines[-1].seq if lines else request.number("after"),
        }
    )


def _span_query(request: OpRequest, default_limit: int) -> SpanQuery:
    try:
        return SpanQuery(
            step=request.text("step"),
            since=request.number("since", float),
            until=request.number("until", float),
            limit=request.limit(default_limit),
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def traces(op: Operated, request: OpRequest) -> OpReply:
    found = await _telemetry(op).traces(_span_query(request, 100))
    return reply({"traces": unstructure(found)})


async def trace(op: Operated, request: OpRequest) -> OpReply:
    trace_id = request.path.removeprefix("/traces/")
    if not trace_id or "/" in trace_id:
        raise BadRequest(f"no trace id in {request.path!r}; expected /_motet/traces/<id>")
    rows, lines = await _telemetry(op).trace(trace_id)
    if not rows and not lines:
        raise BadRequest(f"no trace {trace_id!r} is stored (yet)", status=404)
    return reply(
        {
            "trace_id": trace_id,
            "spans": unstructure(rows),
            "logs": unstructure(lines),
        }
    )


async def queues(op: Operated, request: OpRequest) -> OpReply:
    depth = await op.runtime.backend.depth()
    running = op.runtime.running()
    throttling = op.runtime.throttling()
    out = []
    for sub in op.runtime.subscriptions:
        d = depth.get(sub.key)
        o = sub.options
        out.append(
            {
                "subscription": sub.key,
                "step": sub.step,
                "topic": sub.topic,
                "ready": d.ready if d else 0,
                "leased": d.leased if d else 0,
                "delayed": d.delayed if d else 0,
                "dead": d.dead if d else 0,
                "scheduled": d.scheduled if d else 0,  # delayed emits not yet due
                "in_flight": running.get(sub.step, 0),
                "options": {
                    "max_retries": o.max_retries,
                    "retry_delay": o.retry_delay,
                    "concurrency": o.concurrency,
                    "prefetch": o.lease_ahead,
                    "strategy": o.strategy,
                    "dead_letter_queue": o.dead_letter_queue,
                    "timeout": o.timeout,
                    "rate_limit": str(o.rate_limit) if o.rate_limit else None,
                },
                **_throttle(throttling.get(sub.key)),
            }
        )
    return reply({"queues": out})


def _throttle(t: Throttling | None) -> dict[str, Any]:
    """A rate-limited queue's throttling as this instance sees it."""
    if t is None:
        return {"throttled": False}
    return {"throttled": t.throttled, "throttled_waits": t.waits, "throttled_seconds": t.waited}


async def dead_letters(op: Operated, request: OpRequest) -> OpReply:
    limit = request.limit(100)
    if not 1 <= limit <= 10_000:
        raise BadRequest(f"limit must be in 1..10000, got {limit}")
    letters = await op.runtime.backend.dead_letters(request.text("subscription"), limit=limit)
    return reply(
        {
            "dead_letters": [
                {
                    "id": d.id,
                    "subscription": d.subscription,
                    "error": d.error,
                    "traceback": d.traceback,
                    "attempts": d.attempts,
                    "failed_at": d.failed_at,
                    "failed_at_iso": _iso(d.failed_at),
                    "message": {
                        "id": d.envelope.id,
                        "topic": d.envelope.topic,
                        "data": d.envelope.data,
                        "trace_id": d.envelope.trace_id,
                        "group": d.envelope.group,
                        "created_at": d.envelope.created_at,
                    },
                }
                for d in letters
            ]
        }
    )


def _ids(request: OpRequest) -> list[str]:
    body = request.json()
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise BadRequest(
            f'expected a JSON body {{"ids": ["<dead letter id>", ...]}}, got {body!r}'[:300]
        )
    if len(ids) > MAX_IDS:
        raise BadRequest(f"at most {MAX_IDS} ids per call, got {len(ids)}")
    return ids


async def redrive(op: Operated, request: OpRequest) -> OpReply:
    ids = _ids(request)
    count = await op.runtime.backend.redrive(ids)
    op.runtime.logger().info(
        "dead letters re-driven from the console", requested=len(ids), redriven=count
    )
    return reply({"redriven": count})


async def discard(op: Operated, request: OpRequest) -> OpReply:
    ids = _ids(request)
    count = await op.runtime.backend.discard(ids)
    op.runtime.logger().info(
        "dead letters discarded from the console", requested=len(ids), discarded=count
    )
    return reply({"discarded": count})


async def state(op: Operated, request: OpRequest) -> OpReply:
    rest = request.path.removeprefix("/state").strip("/")
    if not rest:
        return reply({"groups": await op.runtime.backend.state_groups()})
    namespace, _, key = rest.partition("/")
    if key:
        value: JSON = await op.runtime.backend.state_get(namespace, key)
        if value is None:
            raise BadRequest(f"no key {key!r} in state namespace {namespace!r}", status=404)
        return reply({"namespace": namespace, "key": key, "value": value})
    items = await op.runtime.backend.state_list(namespace)
    return reply({"namespace": namespace, "items": [{"key": k, "value": v} for k, v in items]})


def _state_target(request: OpRequest) -> tuple[str, str, dict[str, Any]]:
    body = request.json()
    if not isinstance(body, dict):
        expected = 'expected a JSON object {"namespace": ..., "key": ...}'
        raise BadRequest(f"{expected}, got {body!r}"[:300])
    names = []
    for field in ("namespace", "key"):
        value = body.get(field)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{field!r} must be a non-empty string, got {value!r}"[:300])
        try:
            check_name(value, f"state {field}")
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        names.append(value)
    return names[0], names[1], body


async def state_set(op: Operated, request: OpRequest) -> OpReply:
    """Set one state key to the body's `value` (any JSON), as a handler's `ctx.state.set`
    would: state triggers on the namespace fire."""
    namespace, key, body = _state_target(request)
    if "value" not in body:
        raise BadRequest('expected a "value" (any JSON; use /state/delete to remove a key)')
    trace_id = new_id()
    change = await op.runtime.backend.state_write(
        namespace, key, StateWrite.set(body["value"]), trace_id=trace_id
    )
    op.runtime.logger().info(
        "state key set from the console", namespace=namespace, key=key, event=change.event
    )
    event = change.event or None
    return reply({"namespace": namespace, "key": key, "event": event, "trace_id": trace_id})


async def state_delete(op: Operated, request: OpRequest) -> OpReply:
    """Delete one state key, as `ctx.state.delete` would; deleting a missing key is not an
    error (`event` is null)."""
    namespace, key, _ = _state_target(request)
    trace_id = new_id()
    change = await op.runtime.backend.state_write(
        namespace, key, StateWrite.delete(), trace_id=trace_id
    )
    op.runtime.logger().info(
        "state key deleted from the console", namespace=namespace, key=key, event=change.event
    )
    event = change.event or None
    return reply({"namespace": namespace, "key": key, "event": event, "trace_id": trace_id})


async def cron(op: Operated, request: OpRequest) -> OpReply:
    now = op.runtime.clock.now()
    out = []
    for job in op.runtime.cron_jobs:
        upcoming: list[float] = []
        cursor: float | None = now
        while cursor is not None and len(upcoming) < CRON_PREVIEW:
            cursor = job.schedule.next_after(cursor)
            if cursor is not None:
                upcoming.append(cursor)
        last = await op.runtime.backend.last_tick(job.name)
        out.append(
            {
                "step": job.step,
                "schedule": job.name,
                "expression": job.schedule.expression,
                "timezone": job.schedule.timezone,
                "skip_if_running": job.skip_if_running,
                "next": upcoming,
                "next_iso": [_iso(t) for t in upcoming],
                "last": last,
                "last_iso": _iso(last),
                "running": op.runtime.cron_running(job.name),
            }
        )
    return reply({"now": now, "cron": out})


def _message_id(request: OpRequest, suffix: str = "") -> str:
    rest = request.path.removeprefix("/messages/")
    message_id = rest.removesuffix(suffix) if suffix else rest
    try:
        return check_message_id(message_id)
    except ValueError as exc:
        raise BadRequest(
            f"{exc}; expected /_motet/messages/<id>{suffix} with the id emit returned"
        ) from None


def _status_json(status: MessageStatus) -> dict[str, Any]:
    out = status_json(status)
    for delivery in out["deliveries"]:
        for name in ("enqueued_at", "started_at", "finished_at", "due_at"):
            delivery[name + "_iso"] = _iso(delivery[name])
    return out


async def message(op: Operated, request: OpRequest) -> OpReply:
    message_id = _message_id(request)
    status = await op.runtime.message(message_id)
    if status is None:
        raise BadRequest(
            f"no message {message_id} is known: never emitted here, or settled longer ago "
            f"than the retention ({op.runtime.project.message_retention:g} s)",
            status=404,
        )
    return reply(_status_json(status))


async def cancel_message(op: Operated, request: OpRequest) -> OpReply:
    message_id = _message_id(request, "/cancel")
    outcome = await op.runtime.cancel(message_id)
    if not outcome.found:
        raise BadRequest(outcome.describe(message_id), status=404)
    if not outcome.any:
        raise BadRequest(outcome.describe(message_id), status=409)
    op.runtime.logger().info(
        "message cancelled from the console",
        message_id=message_id,
        cancelled=list(outcome.cancelled),
        running=list(outcome.running),
    )
    return reply({**unstructure(outcome), "detail": outcome.describe(message_id)})


async def _streams(op: Operated, request: OpRequest) -> OpReply:
    from ._streams_api import streams  # the stream inspector (its own module)

    return await streams(op, request)


GET_ENDPOINTS: Mapping[str, Endpoint] = {
    "/health": health,
    "/flows": flows,
    "/routes": routes,
    "/logs": logs,
    "/traces": traces,
    "/queues": queues,
    "/dead-letters": dead_letters,
    "/cron": cron,
    "/state": state,
    "/streams": _streams,
}
POST_ENDPOINTS: Mapping[str, Endpoint] = {
    "/dead-letters/redrive": redrive,
    "/dead-letters/discard": discard,
    "/state/set": state_set,
    "/state/delete": state_delete,
}


def find_endpoint(method: str, path: str) -> Endpoint | None:
    """The endpoint for a path below /_motet; raises BadRequest(405) for a wrong method."""
    table = POST_ENDPOINTS if method == "POST" else GET_ENDPOINTS
    other = GET_ENDPOINTS if method == "POST" else POST_ENDPOINTS
    found = table.get(path)
    if found is None and method in ("GET", "HEAD"):
        if path.startswith("/traces/"):
            found = trace
        elif path.startswith("/state/"):
            found = state
        elif path.startswith("/streams/"):
            found = _streams
        elif path.startswith("/messages/"):
            found = message
    if found is None and method == "POST" and path.startswith("/messages/"):
        if not path.endswith("/cancel"):
            raise BadRequest(f"POST /_motet{path}: expected /_motet/messages/<id>/cancel")
        found = cancel_message
    if found is None and path.startswith("/messages/") and method not in ("GET", "HEAD"):
        raise BadRequest(f"{method} is not allowed on /_motet{path}", status=405)
    known = path in GET_ENDPOINTS or path in POST_ENDPOINTS
    if found is None and known and (path in other or method not in ("GET", "HEAD", "POST")):
        raise BadRequest(f"{method} is not allowed on /_motet{path}", status=405)
    return found
