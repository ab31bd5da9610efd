"""The simulator's clock: virtual time that jumps to the next deadline whenever nothing can run.

Trio's ``MockClock(autojump_threshold=0)`` does the same in two loop passes per
jump: one pass polls with a zero timeout and then jumps (after asking the run
loop for its statistics), and the next pass expires the deadlines that are now
due. A simulated day is mostly such jumps (every sleep of every actor is one),
and that second pass was a quarter of a sleep's cost. Trio asks its clock how
long to sleep only when no task is runnable, so this clock jumps right there:
the deadline is due in the same pass.

Only for worlds without real I/O or threads (the simulator's): time moves on
while nothing is runnable, without waiting to see if a thread or socket would
have made something runnable. ``MockClock`` with a zero threshold does the same.
"""

from __future__ import annotations

import math
from typing import final

import trio

# What the clock answers when no deadline exists: the run loop then waits for
# I/O that, in a simulation, never comes; Trio reports that as a deadlock by
# hanging, as under MockClock. Trio caps the wait at its own maximum anyway.
_NO_DEADLINE_S = 86_400.0


@final
class JumpingClock(trio.abc.Clock):
    """Virtual seconds from 0; each idle wait jumps straight to the next deadline.

    Example::

        trio.run(main, clock=JumpingClock())
    """

    def __init__(self) -> None:
        self._now = 0.0

    def start_clock(self) -> None:
        """Nothing to start: time moves only by jumps."""

    def current_time(self) -> float:
        """The virtual time, in seconds since the run started."""
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """Jumps to ``deadline`` (Trio asks only when nothing is runnable); no real wait."""
        if deadline > self._now:
            if deadline == math.inf:
                return _NO_DEADLINE_S
            self._now = deadline
        return 0.0
