"""Where blocking work (file I/O, psutil, image encoding) runs.

Production runs it in Trio's worker threads so the event loop never blocks; the
simulator runs it inline so a seeded run stays deterministic (no threads on the
sim path, STYLE.md §17). Actors only ever call ``await runner.run(fn, *args)``;
the port is ``actors.ports.BlockingRunner``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, Unpack, final

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@final
class ThreadRunner:
    """Runs blocking calls in Trio's thread pool, limited to ``max_threads`` at once."""

    def __init__(self, max_threads: int = 4) -> None:
        self._limiter = trio.CapacityLimiter(max_threads)

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)


@final
class InlineRunner:
    """Runs blocking calls directly on the event loop, then yields once (sim, tests)."""

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        result = fn(*args)
        await trio.lowlevel.checkpoint()
        return result
