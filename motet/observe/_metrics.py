"""Metrics: counters, gauges and histograms with labels, rendered in the Prometheus text
exposition format (version 0.0.4).

Updates are plain dict arithmetic on the trio thread (observers call them synchronously),
so recording costs a handler nothing it would wait for. Gauges that describe the present
(queue depth, in flight) are set at scrape time by the caller.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import TypeVar

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Handler and request latencies, seconds: Prometheus' default buckets.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LabelValues = tuple[str, ...]
M = TypeVar("M", bound="Metric")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)

    def _key(self, labels: Sequence[str]) -> LabelValues:
        # A length check only; label values are strings by contract. Observations check a
        # label set when it first appears (a new series), not on every update.
        if len(labels) != len(self.label_names):
            raise ValueError(
                f"metric {self.name} takes labels {self.label_names}, got {tuple(labels)!r}"
            )
        return labels if isinstance(labels, tuple) else tuple(labels)

    def samples(self) -> Iterable[str]:
        return ()

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} {self.kind}",
            *self.samples(),
        ]


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        values = self.values
        current = values.get(labels)
        if current is None:
            values[self._key(labels)] = by
        else:
            values[labels] = current + by

    def value(self, *labels: str) -> float:
        return self.values.get(self._key(labels), 0.0)

    def samples(self) -> Iterable[str]:
        for key in sorted(self.values):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(self.values[key])}"


class Gauge(Counter):
    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        self.values[self._key(labels)] = float(value)

    def replace(self, values: dict[LabelValues, float]) -> None:
        """Set every series at once; series not given disappear (a queue that went away)."""
        self.values = {self._key(k): float(v) for k, v in values.items()}


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help, labels)
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError(f"histogram {name}: buckets must be increasing, got {buckets!r}")
        self.buckets = tuple(float(b) for b in buckets)
        # Per series: the count of each bucket alone (cumulated when rendered), the count
        # above the last bucket, then the sum: one increment per observation.
        self.series: dict[LabelValues, list[float]] = {}

    def observe(self, *labels: str, value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.row(*labels)
        row[bisect.bisect_left(self.buckets, value)] += 1
        row[-1] += value

    def row(self, *labels: str) -> list[float]:
        """The series' row (made empty when it first appears). A row is never replaced, so
        a caller may keep it and observe into it as `observe` does: `row[bisect_left(
        buckets, value)] += 1; row[-1] += value`."""
        row = self.series.get(labels)
        if row is None:
            row = self.series[self._key(labels)] = [0.0] * (len(self.buckets) + 2)
        return row

    def count(self, *labels: str) -> int:
        row = self.series.get(self._key(labels))
        return int(sum(row[:-1])) if row else 0

    def samples(self) -> Iterable[str]:
        for key in sorted(self.series):
            row = self.series[key]
            running = 0.0
            for bound, n in zip(self.buckets, row, strict=False):
                running += n
                le = f'le="{_number(bound)}"'
                yield f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(running)}"
            total = running + row[-2]
            inf = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.label_names, key, inf)} {_number(total)}"
            yield f"{self.name}_sum{_labels(self.label_names, key)} {_number(row[-1])}"
            yield f"{self.name}_count{_labels(self.label_names, key)} {_number(total)}"


class Registry:
    """A set of metrics rendered together; names are unique."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def add(self, metric: M) -> M:
        if metric.name in self.metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self.metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
