"""The gateway's settings: one frozen record instead of a dozen keywords."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs

from .._validators import count, port, seconds

if TYPE_CHECKING:
    from ..project import ProjectConfig

MIB = 1024 * 1024


# Timeouts may be infinite (never time out), as they always could.
_SECONDS = seconds(allow_inf=True)


def _lower(value: str) -> str:
    return value.lower()


@attrs.frozen
class GatewayOptions:
    """How the gateway listens, limits requests and describes itself.

    Every time is in seconds. `handler_timeout` applies to routes whose trigger sets no
    `timeout`; `read_timeout` bounds reading one request body (a slow client gets 408);
    `keep_alive_timeout` closes idle connections (and bounds a client that opens a connection
    and never finishes its request line and headers); `graceful_timeout` is how long
    in-flight requests get once shutdown starts.

    `send_timeout` bounds each write of a response: a client that does not take it within
    that time is disconnected (a slow or stalled reader cannot hold a response in memory).
    After an early answer (413, 408, a protocol error) the server closes only after reading
    and discarding what the client still sends, for at most `linger_timeout` seconds and
    `linger_max_bytes` bytes, so a client that writes its whole body before reading (urllib)
    still reads the answer instead of a reset. `max_json_depth` refuses JSON bodies nested
    deeper than that (400) before they are parsed.
    """

    host: str = "127.0.0.1"
    port: int = attrs.field(default=3000, validator=port())
    max_body_size: int = attrs.field(default=1 * MIB, validator=count())
    handler_timeout: float = attrs.field(default=30.0, validator=_SECONDS)
    read_timeout: float = attrs.field(default=10.0, validator=_SECONDS)
    keep_alive_timeout: float = attrs.field(default=5.0, validator=_SECONDS)
    graceful_timeout: float = attrs.field(default=5.0, validator=_SECONDS)
    send_timeout: float = attrs.field(default=30.0, validator=_SECONDS)
    linger_timeout: float = attrs.field(default=5.0, validator=_SECONDS)
    linger_max_bytes: int = attrs.field(default=64 * MIB, validator=count())
    max_json_depth: int = attrs.field(default=128, validator=count())
    trace_header: str = attrs.field(default="x-trace-id", converter=_lower)
    openapi_path: str | None = "/openapi.json"  # None: no OpenAPI route
    title: str = "motet"
    version: str = "0.1.0"
    # A listening socket inherited from a supervising process (`motet start --instances`):
    # served instead of binding host:port, so several processes accept from one queue of
    # connections. `host` still decides the operator endpoints' loopback rule.
    listen_fd: int | None = None
    # hypercorn's own messages (bind, "Error in ASGI Framework"); None silences them.
    error_log: logging.Logger | None = attrs.field(
        factory=lambda: logging.getLogger("motet.gateway"), eq=False
    )

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def gateway_options(config: ProjectConfig, **changes: Any) -> GatewayOptions:
    """The gateway's options a project's assembled config sets (host, port, limits), the
    rest at their defaults."""
    from ..project._config import GATEWAY_KEYS

    limits = {k: getattr(config, k) for k in GATEWAY_KEYS if getattr(config, k) is not None}
    return GatewayOptions(host=config.host, port=config.port, **{**limits, **changes})
