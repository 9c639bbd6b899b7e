"""Per-call cost of an `async def` handler run on asyncio (handlers = "asyncio") against the same
handler run on trio, same run; and, when installed, trio-asyncio's bridge as the alternative.

    .venv/bin/python bench/asyncio_handler.py [--calls 5000] [--rounds 5]

Each variant calls `Dispatcher.call` (what a queue delivery or an HTTP request goes through:
context, observers off, the handler) `--calls` times in a row from one trio task, on an
embedded memory runtime with the wall clock; best round reported, as µs per call:

  trio            async def handler(data, ctx): return None          (the baseline)
  asyncio         the same handler on the runtime's asyncio loop (motet's bridge: a thread)
  trio+ctx        handler awaits ctx.state.get(...) once
  asyncio+ctx     the same on asyncio: one more hop to trio and back for the state call
  trio-asyncio    trio_asyncio.aio_as_trio(handler) inside an open_loop() (no ctx), if the
                  package is installed (`pip install trio-asyncio`); not a motet dependency

The machine is shared and noisy: compare the ratios (to `trio`, same run), not the µs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from motet import open_runtime, queue
from motet.project import ProjectConfig
from motet.steps import load_step


async def plain(data: Any, ctx: Any) -> None:
    return None


async def with_state(data: Any, ctx: Any) -> None:
    await ctx.state.get("bench", "k")


def steps() -> list[Any]:
    return [
        load_step({"name": "trio", "triggers": [queue("a")]}, plain),
        load_step({"name": "asyncio", "triggers": [queue("b")], "handlers": "asyncio"}, plain),
        load_step({"name": "trio+ctx", "triggers": [queue("c")]}, with_state),
        load_step(
            {"name": "asyncio+ctx", "triggers": [queue("d")], "handlers": "asyncio"}, with_state
        ),
    ]


Timing = tuple[float, float]  # (wall µs, CPU µs of the whole process) per call


async def time_calls(runtime: Any, name: str, calls: int) -> Timing:
    dispatcher = runtime.dispatcher
    step = next(s for s in runtime.steps if s.name == name)
    trigger = step.triggers[0]
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        ctx = dispatcher.context(step, trigger, "0" * 32, data={})
        await dispatcher.call(step, trigger, {}, ctx)
    return per_call(start, cpu, calls)


def per_call(start: float, cpu: float, calls: int) -> Timing:
    wall = (time.perf_counter() - start) / calls * 1e6
    return wall, (time.process_time() - cpu) / calls * 1e6


async def time_trio_asyncio(calls: int) -> Timing | None:
    try:
        import trio_asyncio
    except ImportError:
        return None
    async with trio_asyncio.open_loop():
        bridged = trio_asyncio.aio_as_trio(plain)
        await bridged({}, None)  # warm
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            await bridged({}, None)
        return per_call(start, cpu, calls)


async def main(calls: int, rounds: int) -> None:
    best: dict[str, Timing] = {}
    project = ProjectConfig(backend="memory", log_level="error")
    async with open_runtime(steps(), project=project, telemetry=False) as runtime:
        for name in ("trio", "asyncio", "trio+ctx", "asyncio+ctx"):
            await time_calls(runtime, name, 50)  # warm (starts the asyncio loop)
        for _ in range(rounds):
            for name in ("trio", "asyncio", "trio+ctx", "asyncio+ctx"):
                took = await time_calls(runtime, name, calls)
                best[name] = min(best.get(name, took), took)
    for _ in range(rounds):
        took_ = await time_trio_asyncio(calls)
        if took_ is not None:
            best["trio-asyncio"] = min(best.get("trio-asyncio", took_), took_)
    wall0, cpu0 = best["trio"]
    print(f"{calls} calls x {rounds} rounds, best round (by wall time), per call:")
    print(f"  {'variant':13} {'wall µs':>9} {'ratio':>7} {'CPU µs':>9} {'ratio':>7}")
    for name, (wall, cpu) in best.items():
        print(f"  {name:13} {wall:9.1f} {wall / wall0:6.1f}x {cpu:9.1f} {cpu / cpu0:6.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.calls, args.rounds)
