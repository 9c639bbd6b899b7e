"""Where the runtime meets the gateway: the runtime's `HttpInvoker`.

The gateway runs HTTP handlers only through the `HttpInvoker` seam (`motet.steps._http`); this
adapter implements it over the runtime's `Dispatcher`, so an HTTP handler gets the same context,
thread, timeout and observers as a queue or cron one. `build_app` and `mount` wrap a runtime's
dispatcher in it (`as_invoker`), so `motet start`, an embedding app's `mount(app, steps,
runtime.dispatcher, ...)` and the test client (`motet.testing`) all serve through this one.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from .._context import Context
from ..actors._dispatcher import Dispatcher
from ..steps._http import HttpInvoker, Request, RequestDeclined
from ..steps._model import HttpTrigger, Step


class RuntimeInvoker:
    """Runs an HTTP step's handler through the runtime's dispatcher."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def invoke_http(
        self, step: Step, trigger: HttpTrigger, request: Request
    ) -> Coroutine[Any, Any, Any]:
        # Without a condition, the dispatcher's own coroutine is what the gateway awaits
        # (one frame fewer resumed at each of the handler's checkpoints).
        ctx = self._dispatcher.context(
            step, trigger, request.trace_id, data=request.body, request=request
        )
        if trigger.condition is None:
            return self._dispatcher.call(step, trigger, request, ctx)
        return self._if_wanted(step, trigger, request, ctx)

    async def _if_wanted(
        self, step: Step, trigger: HttpTrigger, request: Request, ctx: Context
    ) -> Any:
        if not await self._dispatcher.wanted(step, trigger, request, ctx):
            raise RequestDeclined(step.name, request.method, request.path)
        return await self._dispatcher.call(step, trigger, request, ctx)

    def log_error(
        self,
        message: str,
        *,
        trace_id: str,
        step: str | None,
        exc_info: BaseException | None = None,
        **fields: Any,
    ) -> None:
        logger = self._dispatcher.hub.logger(step=step, trace_id=trace_id)
        logger.error(message, exc_info=exc_info, **fields)


def as_invoker(invoker: HttpInvoker | Dispatcher) -> HttpInvoker:
    """A runtime's dispatcher as an `HttpInvoker`; any other invoker (a test's) as it is."""
    return RuntimeInvoker(invoker) if isinstance(invoker, Dispatcher) else invoker
