"""The gateway as a part of a runtime (`motet._runtime.Part`): serves the runtime's HTTP
steps, with the operator endpoints (console, metrics, dead letters, state) in front of them.

`serving(options)` is what `motet start` and `open_runtime(serve=...)` run: telemetry, then
the gateway reading it, so the gateway stops first and the last spans are still stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..gateway._options import GatewayOptions

if TYPE_CHECKING:
    from .._runtime import Part, Runtime
    from ..observe import Telemetry, TelemetryOptions


class GatewayPart:
    def __init__(self, options: GatewayOptions, *, telemetry: Telemetry | None = None) -> None:
        self.options = options
        self.telemetry = telemetry  # what /metrics and the console's logs and traces read
        self._stop = trio.Event()
        self._done = trio.Event()

    async def run(
        self,
        runtime: Runtime,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        from ..gateway._plain import gateway_app
        from ..gateway._serve import serve
        from ._auth import OperatorAccess, check_bind, resolve_token
        from ._operator import OperatorASGI

        assert runtime.dispatcher is not None
        self._stop, self._done = trio.Event(), trio.Event()
        try:
            # The operator endpoints need a token before they may face the network.
            token = resolve_token(runtime.project.token)
            check_bind(self.options.host, token)
            on_http = runtime.observer.hook("on_http")
            gateway = gateway_app(
                runtime.steps,
                runtime.dispatcher,
                converter=runtime.converter,
                options=self.options,
                streams=runtime.streams,
                on_http=on_http,
            )
            app = OperatorASGI(
                runtime.view,
                gateway,
                access=OperatorAccess(token),
                options=self.options,
                telemetry=self.telemetry,
                on_http=on_http,
            )
            await serve(
                app, self.options, shutdown_trigger=self._stop.wait, task_status=task_status
            )
        finally:
            self._done.set()

    async def drain(self) -> None:
        """Stop accepting work and return once the requests in flight are answered (within
        `graceful_timeout`)."""
        self._stop.set()
        await self._done.wait()


def serving(options: GatewayOptions, telemetry: TelemetryOptions | bool = True) -> list[Part]:
    """The parts of a runtime that serves HTTP: telemetry (True: default options; False:
    none), then the gateway."""
    from ..observe import Telemetry, TelemetryOptions

    if telemetry is False:
        return [GatewayPart(options)]
    recorder = Telemetry(telemetry if isinstance(telemetry, TelemetryOptions) else None)
    return [recorder, GatewayPart(options, telemetry=recorder)]
