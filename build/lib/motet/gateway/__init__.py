"""The HTTP gateway: HTTP triggers served by quart-trio on hypercorn's trio worker."""

from .._public import publish as _publish
from ..steps._http import HttpInvoker as HttpInvoker
from ..steps._http import Request as Request
from ..steps._http import Response as Response
from ._app import build_app as build_app
from ._app import mount as mount
from ._asgi import MotetASGI as MotetASGI
from ._connection import KeepAliveSafeHTTPConnection as KeepAliveSafeHTTPConnection
from ._openapi import openapi_document as openapi_document
from ._options import GatewayOptions as GatewayOptions
from ._serve import serve as serve
from ._trace import accept_trace_id as accept_trace_id

__all__ = [
    "GatewayOptions",
    "HttpInvoker",
    "KeepAliveSafeHTTPConnection",
    "MotetASGI",
    "Request",
    "Response",
    "accept_trace_id",
    "build_app",
    "mount",
    "openapi_document",
    "serve",
]

_publish(__name__, globals())
