"""Motia's streams: records a handler publishes (`ctx.streams.<name>.set/get/delete/
get_group/send`) and clients follow live over SSE or WebSocket at `/_streams/{name}/{group}`.
Stream files (`*.stream.py`, `*_stream.py`) in the steps folder declare them."""

from __future__ import annotations

from .._public import publish as _publish
from ..backends._stream_records import StreamChange as StreamChange
from ..backends._stream_records import StreamSnapshot as StreamSnapshot
from ._config import StreamConfig as StreamConfig
from ._config import StreamRequest as StreamRequest
from ._config import load_streams as load_streams
from ._config import stream_from_config as stream_from_config
from ._hub import StreamHub as StreamHub
from ._service import StreamClient as StreamClient
from ._service import Streams as Streams
from ._service import StreamService as StreamService
from ._service import UnknownStreamError as UnknownStreamError

__all__ = [
    "StreamChange",
    "StreamClient",
    "StreamConfig",
    "StreamHub",
    "StreamRequest",
    "StreamService",
    "StreamSnapshot",
    "Streams",
    "UnknownStreamError",
    "load_streams",
    "stream_from_config",
]

_publish(__name__, globals())
