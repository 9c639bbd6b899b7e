"""The HTTP gateway: HTTP triggers served on hypercorn's trio worker, as a plain ASGI app
(`gateway_app`) or in front of a quart-trio app (`build_app`, `mount`).

`build_app`, `mount` and `KeepAliveSafeHTTPConnection` are exported lazily: Quart loads only
when one of them is used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._public import publish as _publish
from .._public import publish_one as _publish_one
from ..steps._http import HttpInvoker as HttpInvoker
from ..steps._http import Request as Request
from ..steps._http import Response as Response
from ._asgi import MotetASGI as MotetASGI
from ._openapi import openapi_document as openapi_document
from ._options import GatewayOptions as GatewayOptions
from ._plain import gateway_app as gateway_app
from ._serve import serve as serve
from ._trace import accept_trace_id as accept_trace_id

if TYPE_CHECKING:
    from ._app import build_app as build_app
    from ._app import mount as mount
    from ._connection import KeepAliveSafeHTTPConnection as KeepAliveSafeHTTPConnection

__all__ = [
    "GatewayOptions",
    "HttpInvoker",
    "KeepAliveSafeHTTPConnection",
    "MotetASGI",
    "Request",
    "Response",
    "accept_trace_id",
    "build_app",
    "gateway_app",
    "mount",
    "openapi_document",
    "serve",
]

_LAZY = {"build_app": "._app", "mount": "._app", "KeepAliveSafeHTTPConnection": "._connection"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    _publish_one(__name__, value)
    globals()[name] = value
    return value


_publish(__name__, globals())
