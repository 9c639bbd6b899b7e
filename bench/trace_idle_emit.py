"""Where an in-process message's latency goes when the worker is idle (target 1's W2 p50).

    .venv/bin/python bench/trace_idle_emit.py [--emits 300] [--traced 250]

One queue step (concurrency 10) on the memory backend; emits 10 ms apart, each waiting for its
handler to start before the next. For emit `--traced`, a trio Instrument prints every task
step and I/O wait from the emit's start to the handler's start; then the p50 of
emit → handler start and of the emit call alone, over all emits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import trio

import motet
from motet import queue
from motet.steps import load_step


class Timeline(trio.abc.Instrument):
    """Task steps and I/O waits, with their perf_counter time, while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.events: list[tuple[float, str]] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.on:
            self.events.append((time.perf_counter(), "step " + task.name.rsplit(".", 1)[-1]))

    def before_io_wait(self, timeout: float) -> None:
        if self.on:
            self.events.append((time.perf_counter(), f"io wait (timeout {timeout:.4f} s)"))

    def after_io_wait(self, timeout: float) -> None:
        if self.on:
            self.events.append((time.perf_counter(), "io wait done"))


async def run(emits: int, traced: int, timeline: Timeline) -> None:
    starts: list[float] = []

    async def handler(job: Any, ctx: Any) -> None:
        starts.append(time.perf_counter())

    step = load_step({"name": "BenchJob", "triggers": [queue("bench", concurrency=10)]}, handler)
    with open(os.devnull, "w") as quiet:
        options = motet.RuntimeOptions(log_stream=quiet)
        async with motet.open_runtime([step], backend="memory", options=options) as runtime:
            latency: list[float] = []
            emit_call: list[float] = []
            for i in range(emits):
                await trio.sleep(0.01)
                timeline.on = i == traced
                seen = len(starts)
                t0 = time.perf_counter()
                await runtime.emit("bench", {"i": i})
                t1 = time.perf_counter()
                while len(starts) == seen:
                    await trio.sleep(0)
                timeline.on = False
                latency.append((starts[-1] - t0) * 1e6)
                emit_call.append((t1 - t0) * 1e6)
                if i == traced:
                    for t, event in timeline.events:
                        print(f"{(t - t0) * 1e6:8.1f} µs  {event}")
                    print(f"{(t1 - t0) * 1e6:8.1f} µs  emit returned")
                    print(f"{(starts[-1] - t0) * 1e6:8.1f} µs  handler started")
    print(
        f"over {emits} emits: emit → handler start p50 {statistics.median(latency):.0f} µs, "
        f"the emit call alone p50 {statistics.median(emit_call):.0f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emits", type=int, default=300)
    parser.add_argument("--traced", type=int, default=250)
    args = parser.parse_args()
    timeline = Timeline()
    trio.run(run, args.emits, args.traced, timeline, instruments=[timeline])


if __name__ == "__main__":
    main()
