"""/metrics after a known workload, and the Prometheus text format itself."""

from __future__ import annotations

import re
from typing import Any

import pytest

from motet.observe import PROMETHEUS_CONTENT_TYPE, Counter, Histogram, Registry

from ._app import http_step, open_observed, queue_step

_SAMPLE = re.compile(r"^([a-z_]+)(\{.*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        found = _SAMPLE.match(line)
        assert found, f"not a sample line: {line!r}"
        samples[found.group(1) + (found.group(2) or "")] = float(found.group(3))
    return samples


def workload_steps() -> list[Any]:
    tries: dict[int, int] = {}

    async def submit(request: Any, ctx: Any) -> Any:
        await ctx.emit("job", {"n": request.body["n"]})
        return {"status": 202, "body": {}}

    async def work(data: Any, ctx: Any) -> None:
        n = data["n"]
        tries[n] = tries.get(n, 0) + 1
        if n == 2 or (n == 1 and tries[n] == 1):
            raise RuntimeError(f"job {n} failed")

    return [
        http_step("Submit", "POST", "/jobs", submit, enqueues=["job"]),
        queue_step("Worker", "job", work, options={"maxRetries": 1, "retryDelay": 100}),
    ]


async def test_metrics_count_a_known_workload(autojump_clock: Any) -> None:
    async with open_observed(workload_steps()) as app:
        for n in range(3):
            assert (await app.http.post("/jobs", json={"n": n})).status_code == 202
        bad = await app.http.post(
            "/jobs", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert bad.status_code == 400
        assert (await app.http.get("/nowhere")).status_code == 404
        await app.settle()
        response = await app.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == PROMETHEUS_CONTENT_TYPE
    m = parse(response.text)
    job = '{step="Worker",topic="job"}'
    assert m["motet_messages_received_total" + job] == 5  # 1 + 2 + 2 attempts
    assert m["motet_messages_succeeded_total" + job] == 2
    assert m["motet_messages_failed_total" + job] == 3
    assert m["motet_messages_retried_total" + job] == 2
    assert m["motet_messages_dead_lettered_total" + job] == 1
    assert m['motet_queue_depth{step="Worker",topic="job",state="dead"}'] == 1
    assert m['motet_queue_depth{step="Worker",topic="job",state="ready"}'] == 0
    assert m['motet_handlers_in_flight{step="Worker"}'] == 0
    assert m['motet_handler_duration_seconds_count{step="Worker",trigger="queue"}'] == 5
    assert m['motet_handler_duration_seconds_bucket{step="Worker",trigger="queue",le="+Inf"}'] == 5
    assert m['motet_handler_runs_total{step="Worker",trigger="queue",outcome="error"}'] == 3
    assert m['motet_handler_runs_total{step="Submit",trigger="http",outcome="ok"}'] == 3
    assert m['motet_http_requests_total{method="POST",route="/jobs",status="202"}'] == 3
    assert m['motet_http_requests_total{method="POST",route="/jobs",status="400"}'] == 1
    assert m['motet_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert m['motet_http_request_duration_seconds_count{method="POST",route="/jobs"}'] == 4
    # Operator requests are not counted (the console polls them).
    assert not any("/metrics" in key for key in m)


def test_prometheus_text_escapes_labels_and_accumulates_buckets() -> None:
    registry = Registry()
    counter = registry.add(Counter("x_total", "Things.", ("name",)))
    counter.inc('a "quoted"\\ line\nbreak')
    histogram = registry.add(Histogram("d_seconds", "Durations.", (), buckets=(0.1, 1.0)))
    for value in (0.05, 0.5, 1.0, 3.0):  # a value on a bound counts in that bucket
        histogram.observe(value=value)
    text = registry.render()
    assert 'x_total{name="a \\"quoted\\"\\\\ line\\nbreak"} 1' in text
    assert "# TYPE d_seconds histogram" in text
    assert 'd_seconds_bucket{le="0.1"} 1\nd_seconds_bucket{le="1"} 3\n' in text
    assert 'd_seconds_bucket{le="+Inf"} 4' in text
    assert "d_seconds_count 4" in text and "d_seconds_sum 4.55" in text
    assert text.endswith("\n")


def test_metric_misuse_is_refused() -> None:
    registry = Registry()
    counter = registry.add(Counter("c_total", "C.", ("step",)))
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc("a", "b")
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Counter("c_total", "again"))
    with pytest.raises(ValueError, match="increasing"):
        Histogram("h", "H.", buckets=(1.0, 0.5))


def test_cached_series_observe_as_counter_and_histogram_do() -> None:
    """RuntimeMetrics keeps each series' labels and histogram row once found: the counts,
    buckets and sums must be what `Counter.inc` and `Histogram.observe` give."""
    from motet._observer import HttpExchange
    from motet.actors._dispatcher import HandlerRun
    from motet.observe._metrics import Counter, Histogram
    from motet.observe._runtime_metrics import RuntimeMetrics

    metrics = RuntimeMetrics([])
    runs, latency = Counter("r", "", ("s", "t", "o")), Histogram("l", "", ("s", "t"))
    requests, http_latency = Counter("h", "", ("m", "r", "s")), Histogram("d", "", ("m", "r"))
    for i, duration in enumerate([0.001, 0.3, 0.001, 7.0, 20.0, 0.05]):
        outcome = "ok" if i % 3 else "error"
        metrics.on_run(HandlerRun("S", "http", "t", None, None, 0.0, duration, outcome))
        runs.inc("S", "http", outcome)
        latency.observe("S", "http", value=duration)
        status, route = (200, "/a") if i % 2 else (500, None)
        metrics.on_http(HttpExchange("POST", route, "/x", status, "t", "S", duration))
        requests.inc("POST", route or "unmatched", str(status))
        http_latency.observe("POST", route or "unmatched", value=duration)
    assert metrics.runs.values == runs.values
    assert metrics.latency.series == latency.series
    assert metrics.http_requests.values == requests.values
    assert metrics.http_latency.series == http_latency.series
