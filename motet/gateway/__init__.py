"""The HTTP gateway: HTTP triggers served by quart-trio on hypercorn's trio worker."""

from ._app import build_app as build_app
from ._app import mount as mount
from ._asgi import MotetASGI as MotetASGI
from ._connection import KeepAliveSafeHTTPConnection as KeepAliveSafeHTTPConnection
from ._openapi import openapi_document as openapi_document
from ._options import GatewayOptions as GatewayOptions
from ._request import HttpInvoker as HttpInvoker
from ._request import Request as Request
from ._request import Response as Response
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
