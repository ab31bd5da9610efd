"""The production clocks: the wall clock for timestamps, and Trio's clock for timers."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, final

import trio

if TYPE_CHECKING:
    from collections.abc import Callable

_MS = 1e-3
# Asked of epoll a hair below a whole millisecond, so its rounding up lands on it.
_EPOLL_MARGIN_S = 1e-6
# Beyond this, waking up to a millisecond early costs nothing worth avoiding.
_COARSE_S = 1.0


@final
class SystemWallClock:
    """``WallClock`` from ``time.time_ns()``; the only place Ferry reads the real clock."""

    def now_ns(self) -> int:
        return time.time_ns()


@final
class PreciseClock(trio.abc.Clock):
    """Trio's monotonic clock, with timers that fire on time instead of up to 1 ms late.

    Trio waits for I/O in ``epoll_wait``, whose timeout CPython rounds up to whole
    milliseconds, so every ``sleep_until`` ended up to 1 ms after its deadline: half of
    a 100 Hz collector's 2 ms jitter budget. This clock asks the loop to wait the
    whole milliseconds short of a deadline, then sleeps the rest (under 1 ms) in
    ``time.sleep``, a nanosecond timer. I/O that arrives during that last fraction
    of a millisecond waits for it, as a timer waited for epoll before. ``ferry
    run`` runs under it; the simulator runs under its own clock.

    Example::

        trio.run(main, clock=PreciseClock())
    """

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._now = now
        self._sleep = sleep

    def start_clock(self) -> None:
        """Nothing to start: the monotonic clock always runs."""

    def current_time(self) -> float:
        """Seconds on the monotonic clock (``time.perf_counter``)."""
        return self._now()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """How long the loop may wait for I/O before ``deadline``; sleeps the last fraction."""
        remaining = deadline - self._now()
        if remaining >= _COARSE_S:
            return remaining - _MS
        if remaining >= _MS:
            return math.floor(remaining / _MS) * _MS - _EPOLL_MARGIN_S
        if remaining > 0:
            self._sleep(remaining)
        return 0.0
