"""The runtime's metrics: what `/metrics` shows, per step and topic, and per HTTP route."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._envelope import QueueDepth, Subscription
from ..actors._dispatcher import HandlerRun
from ..actors._rate_gate import Throttling
from ._metrics import Counter, Gauge, Histogram, Registry
from ._records import HttpExchange

if TYPE_CHECKING:
    from .._observer import RuntimeView

STEP_TOPIC = ("step", "topic")


class _RunLabels:
    """The label values a handler run of one (step, trigger, outcome, topic) counts under,
    and its latency histogram's row (a series' row is made once and updated in place)."""

    __slots__ = ("latency", "queue", "run")

    def __init__(self, key: tuple[str, str, str, str | None], latency: Histogram) -> None:
        step, trigger, outcome, topic = key
        self.run = (step, trigger, outcome)  # motet_handler_runs_total
        self.latency = latency.row(step, trigger)  # motet_handler_duration_seconds
        self.queue = None if topic is None else (step, topic)  # the motet_messages_* counters


class _HttpLabels:
    """The same for a request of one (method, route, status)."""

    __slots__ = ("latency", "requests")

    def __init__(self, method: str, route: str, status: int, latency: Histogram) -> None:
        self.requests = (method, route, str(status))  # motet_http_requests_total
        self.latency = latency.row(method, route)  # motet_http_request_duration_seconds


class RuntimeMetrics:
    """Counters fed by observers; gauges refreshed from the runtime at scrape time."""

    def __init__(self, subscriptions: list[Subscription]) -> None:
        self.registry = r = Registry()
        # 1 + max_retries per (step, topic): a failed attempt below it is retried, at it
        # the message is dead-lettered (the step actor's RetryPolicy decides the same way).
        self._attempts = {(s.step, s.topic): 1 + s.options.max_retries for s in subscriptions}
        self._run_labels: dict[tuple[str, str, str, str | None], _RunLabels] = {}
        self._http_labels: dict[tuple[str, str | None, int], _HttpLabels] = {}
        self.received = r.add(
            Counter(
                "motet_messages_received_total",
                "Deliveries handed to a handler (every attempt counts).",
                STEP_TOPIC,
            )
        )
        self.succeeded = r.add(
            Counter(
                "motet_messages_succeeded_total", "Deliveries whose handler returned.", STEP_TOPIC
            )
        )
        self.failed = r.add(
            Counter(
                "motet_messages_failed_total",
                "Deliveries whose handler raised or timed out.",
                STEP_TOPIC,
            )
        )
        self.retried = r.add(
            Counter(
                "motet_messages_retried_total", "Failed deliveries scheduled again.", STEP_TOPIC
            )
        )
        self.dead_lettered = r.add(
            Counter(
                "motet_messages_dead_lettered_total",
                "Failed deliveries with no attempt left (dead letters or the dead-letter queue).",
                STEP_TOPIC,
            )
        )
        self.runs = r.add(
            Counter(
                "motet_handler_runs_total",
                "Handler calls by trigger and outcome.",
                ("step", "trigger", "outcome"),
            )
        )
        self.latency = r.add(
            Histogram(
                "motet_handler_duration_seconds", "Handler call duration.", ("step", "trigger")
            )
        )
        self.in_flight = r.add(
            Gauge("motet_handlers_in_flight", "Handlers running now, per step.", ("step",))
        )
        self.depth = r.add(
            Gauge(
                "motet_queue_depth",
                "Messages per subscription queue and condition.",
                ("step", "topic", "state"),
            )
        )
        self.http_requests = r.add(
            Counter(
                "motet_http_requests_total",
                "HTTP requests by route and status.",
                ("method", "route", "status"),
            )
        )
        self.http_latency = r.add(
            Histogram(
                "motet_http_request_duration_seconds", "HTTP request duration.", ("method", "route")
            )
        )
        self._latency_buckets = self.latency.buckets
        self._http_buckets = self.http_latency.buckets
        self.dropped = r.add(
            Counter(
                "motet_telemetry_dropped_total",
                "Log lines and spans dropped: the telemetry buffer was full or a write failed.",
                ("kind",),
            )
        )
        self.write_errors = r.add(
            Counter("motet_telemetry_write_errors_total", "Telemetry batches the store refused.")
        )
        self._add_rate_limits(r)

    def _add_rate_limits(self, r: Registry) -> None:
        self.rate_limit = r.add(
            Gauge(
                "motet_rate_limit_per_second",
                "Configured rate limit of a subscription: handler starts per second, across "
                "every instance.",
                STEP_TOPIC,
            )
        )
        self.throttled = r.add(
            Gauge(
                "motet_rate_limit_throttled",
                "1 while this instance waits for a rate-limit token with messages ready.",
                STEP_TOPIC,
            )
        )
        self.throttled_waits = r.add(
            Counter(
                "motet_rate_limit_waits_total",
                "Waits of this instance for a rate-limit token while messages were ready.",
                STEP_TOPIC,
            )
        )
        self.throttled_seconds = r.add(
            Counter(
                "motet_rate_limit_wait_seconds_total",
                "Seconds this instance waited for rate-limit tokens while messages were ready.",
                STEP_TOPIC,
            )
        )

    def refresh_throttling(self, throttling: Mapping[str, Throttling]) -> None:
        """The actors keep their own counts; a scrape copies them."""
        per_second: dict[tuple[str, ...], float] = {}
        now: dict[tuple[str, ...], float] = {}
        waits: dict[tuple[str, ...], float] = {}
        waited: dict[tuple[str, ...], float] = {}
        for key, t in throttling.items():
            step, _, topic = key.partition("@")
            labels = (step, topic)
            per_second[labels] = t.limit.per_second
            now[labels] = 1.0 if t.throttled else 0.0
            waits[labels] = t.waits
            waited[labels] = t.waited
        self.rate_limit.replace(per_second)
        self.throttled.replace(now)
        self.throttled_waits.values = waits
        self.throttled_seconds.values = waited

    def on_run(self, run: HandlerRun) -> None:
        # Once per handler run: the label tuples of a (step, trigger, outcome, topic) are built
        # once (as many as the series they name) and the counters' dicts updated in place,
        # which is what `Counter.inc` does, without its call and argument packing.
        key = (run.step, run.trigger, run.outcome, run.topic)
        labels = self._run_labels.get(key)
        if labels is None:
            labels = self._run_labels[key] = _RunLabels(key, self.latency)
        values = self.runs.values
        values[labels.run] = values.get(labels.run, 0.0) + 1.0
        duration = run.duration
        row = labels.latency  # Histogram.observe, inline
        row[bisect_left(self._latency_buckets, duration)] += 1
        row[-1] += duration
        queue = labels.queue
        if queue is None:
            return
        values = self.received.values
        values[queue] = values.get(queue, 0.0) + 1.0
        if run.outcome == "ok":
            values = self.succeeded.values
            values[queue] = values.get(queue, 0.0) + 1.0
            return
        self.failed.inc(*queue)
        attempts = self._attempts.get(queue, 1)
        if (run.attempt or 1) < attempts:
            self.retried.inc(*queue)
        else:
            self.dead_lettered.inc(*queue)

    def on_http(self, exchange: HttpExchange) -> None:
        # Once per request: as on_run, labels and the histogram's row are found once per
        # (method, route, status), then updated as `Counter.inc` and `observe` would.
        key = (exchange.method, exchange.route, exchange.status)
        labels = self._http_labels.get(key)
        if labels is None:
            route = exchange.route or "unmatched"
            labels = _HttpLabels(exchange.method, route, exchange.status, self.http_latency)
            self._http_labels[key] = labels
        values = self.http_requests.values
        values[labels.requests] = values.get(labels.requests, 0.0) + 1.0
        duration = exchange.duration
        row = labels.latency
        row[bisect_left(self._http_buckets, duration)] += 1
        row[-1] += duration

    def refresh(self, running: Mapping[str, int], depth: Mapping[str, QueueDepth]) -> None:
        self.in_flight.replace({(step,): n for step, n in running.items()})
        values: dict[tuple[str, ...], float] = {}
        for key, d in depth.items():
            step, _, topic = key.partition("@")
            for state in ("ready", "leased", "delayed", "dead", "scheduled"):
                values[(step, topic, state)] = getattr(d, state)
        self.depth.replace(values)

    async def render(self, runtime: RuntimeView) -> str:
        running = {step: 0 for step in (s.name for s in runtime.steps)}
        running.update(runtime.running())
        self.refresh(running, await runtime.backend.depth())
        self.refresh_throttling(runtime.throttling())
        return self.registry.render()
