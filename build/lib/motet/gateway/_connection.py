"""quart-trio's HTTP connection, made safe for hypercorn's keep-alive bookkeeping.

The defect (quart-trio 0.12 on hypercorn 0.17/0.18's trio worker): quart-trio runs a
request as two tasks in one nursery and cancels that nursery when the `http.disconnect`
event arrives. hypercorn delivers that event from *inside* the app's last `send()` (ending
the response ends the stream, and ending the stream queues `http.disconnect`), and then
goes on, still inside that `send()`, to re-arm the connection's idle timer or to close the
socket. The cancellation lands on the first checkpoint of that work, so:

  (a) a `Connection: close` response is never followed by closing the socket,
  (b) the idle timer is never re-armed, so `keep_alive_timeout` is not enforced and idle
      connections (and their file descriptors) live until the client leaves,
  (c) graceful shutdown waits the whole `graceful_timeout` for those idle connections.

The fix here: every `send()` of the response runs shielded, so hypercorn finishes its own
bookkeeping; the nursery's cancellation then lands on the app's next checkpoint, after
the response is complete. Nothing else changes: a client that disconnects before the
response starts still cancels its handler, and the bytes hypercorn writes to the socket
were already shielded by hypercorn itself, so no send can hang that could not before.
This is per app (`app.asgi_http_class`), not a process-wide patch of hypercorn.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.typing import ASGISendCallable, ASGISendEvent
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection


class KeepAliveSafeHTTPConnection(TrioASGIHTTPConnection):
    """`TrioASGIHTTPConnection` whose response sends are never cut by its own nursery."""

    async def _send_response(self, send: ASGISendCallable, response: Any) -> None:
        async def shielded_send(message: ASGISendEvent) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await super()._send_response(shielded_send, response)


def make_keep_alive_safe(app: QuartTrio) -> None:
    """Use the safe connection class on this app (idempotent). A subclass the app already
    uses on purpose is left alone."""
    if app.asgi_http_class is TrioASGIHTTPConnection:
        app.asgi_http_class = KeepAliveSafeHTTPConnection
