"""The runtime's metrics: what `/metrics` shows, per step and topic, and per HTTP route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._envelope import QueueDepth, Subscription
from ..actors._dispatcher import HandlerRun
from ._metrics import Counter, Gauge, Histogram, Registry
from ._records import HttpExchange

if TYPE_CHECKING:
    from .._observer import RuntimeView

STEP_TOPIC = ("step", "topic")


class RuntimeMetrics:
    """Counters fed by observers; gauges refreshed from the runtime at scrape time."""

    def __init__(self, subscriptions: list[Subscription]) -> None:
        self.registry = r = Registry()
        # 1 + max_retries per (step, topic): a failed attempt below it is retried, at it
        # the message is dead-lettered (the step actor's RetryPolicy decides the same way).
        self._attempts = {(s.step, s.topic): 1 + s.options.max_retries for s in subscriptions}
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

    def on_run(self, run: HandlerRun) -> None:
        self.runs.inc(run.step, run.trigger, run.outcome)
        self.latency.observe(run.step, run.trigger, value=run.duration)
        if run.topic is None:
            return
        labels = (run.step, run.topic)
        self.received.inc(*labels)
        if run.outcome == "ok":
            self.succeeded.inc(*labels)
            return
        self.failed.inc(*labels)
        attempts = self._attempts.get(labels, 1)
        if (run.attempt or 1) < attempts:
            self.retried.inc(*labels)
        else:
            self.dead_lettered.inc(*labels)

    def on_http(self, exchange: HttpExchange) -> None:
        route = exchange.route or "unmatched"
        self.http_requests.inc(exchange.method, route, str(exchange.status))
        self.http_latency.observe(exchange.method, route, value=exchange.duration)

    def refresh(self, running: Mapping[str, int], depth: Mapping[str, QueueDepth]) -> None:
        self.in_flight.replace({(step,): n for step, n in running.items()})
        values: dict[tuple[str, ...], float] = {}
        for key, d in depth.items():
            step, _, topic = key.partition("@")
            for state in ("ready", "leased", "delayed", "dead"):
                values[(step, topic, state)] = getattr(d, state)
        self.depth.replace(values)

    async def render(self, runtime: RuntimeView) -> str:
        running = {step: 0 for step in (s.name for s in runtime.steps)}
        running.update(runtime.running())
        self.refresh(running, await runtime.backend.depth())
        return self.registry.render()
