"""What Trio's primitives cost under the simulator's clock: a sleep against a checkpoint.

Ten tasks either sleep to distinct deadlines or only checkpoint, under
``sim.clock.JumpingClock``. Two sleeps: Trio's (a cancel scope whose deadline
expires and raises ``Cancelled`` into the task) and ``actors.timers.sleep_until``
(the same deadline; its abort callback reschedules the task instead). Prints
CPU microseconds per operation. A simulated day is mostly such sleeps
(docs/performance.md, "Afternoon (2026-11-22)").

Run: python -m bench.trio_costs [--ops 200000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import trio

from actors.timers import sleep_until
from bench.common import cpu_model, python_build
from sim.clock import JumpingClock

TASKS = 10


async def _sleeper(k: int, n: int) -> None:
    t = 0.0
    for _ in range(n):
        t += 0.001 * (k + 1)  # distinct periods: deadlines rarely coincide
        await trio.sleep_until(t)


async def _ferry_sleeper(k: int, n: int) -> None:
    t = 0.0
    for _ in range(n):
        t += 0.001 * (k + 1)
        await sleep_until(t)


async def _checkpointer(_k: int, n: int) -> None:
    for _ in range(n):
        await trio.lowlevel.checkpoint()


def cost_us(kind: str, ops: int) -> float:
    """CPU microseconds per operation (``sleep``, ``ferry-sleep`` or ``checkpoint``)."""
    task = {"sleep": _sleeper, "ferry-sleep": _ferry_sleeper, "checkpoint": _checkpointer}[kind]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for k in range(TASKS):
                nursery.start_soon(task, k, ops // TASKS)

    started = time.process_time()
    trio.run(main, clock=JumpingClock())
    return (time.process_time() - started) / ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"bench.trio_costs: {cpu_model()}; {python_build()}; Trio {trio.__version__}")
    for _ in range(args.rounds):
        for kind in ("sleep", "ferry-sleep", "checkpoint"):
            print(f"  {kind:<11} {cost_us(kind, args.ops):6.1f} µs CPU each ({args.ops:,} ops)")


if __name__ == "__main__":
    main()
