"""Observing a runtime: stored logs and traces, metrics, the flows graph. A layer above the
runtime (docs/architecture.md)."""

from .._public import publish as _publish
from ._flows import flow_graph as flow_graph
from ._metrics import PROMETHEUS_CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from ._metrics import Counter as Counter
from ._metrics import Gauge as Gauge
from ._metrics import Histogram as Histogram
from ._metrics import Registry as Registry
from ._records import Emitted as Emitted
from ._records import HttpExchange as HttpExchange
from ._records import LogQuery as LogQuery
from ._records import Span as Span
from ._records import SpanQuery as SpanQuery
from ._records import StateWriteInfo as StateWriteInfo
from ._records import StoredLog as StoredLog
from ._records import TraceSummary as TraceSummary
from ._runtime_metrics import RuntimeMetrics as RuntimeMetrics
from ._sqlite_store import SqliteTelemetryStore as SqliteTelemetryStore
from ._store import MemoryTelemetryStore as MemoryTelemetryStore
from ._store import Retention as Retention
from ._store import TelemetryStore as TelemetryStore
from ._telemetry import Telemetry as Telemetry
from ._telemetry import TelemetryOptions as TelemetryOptions
from ._traces import TraceRow as TraceRow
from ._traces import parents as parents
from ._traces import waterfall as waterfall

__all__ = [
    "PROMETHEUS_CONTENT_TYPE",
    "Counter",
    "Emitted",
    "Gauge",
    "Histogram",
    "HttpExchange",
    "LogQuery",
    "MemoryTelemetryStore",
    "Registry",
    "Retention",
    "RuntimeMetrics",
    "Span",
    "SpanQuery",
    "SqliteTelemetryStore",
    "StateWriteInfo",
    "StoredLog",
    "Telemetry",
    "TelemetryOptions",
    "TelemetryStore",
    "TraceRow",
    "TraceSummary",
    "flow_graph",
    "parents",
    "waterfall",
]

_publish(__name__, globals())
