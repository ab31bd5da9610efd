"""``sleep_until`` for the hot timers: Trio's, without raising ``Cancelled`` to wake up.

``trio.sleep_until`` wakes a task by cancelling a scope around ``sleep_forever``:
Trio builds a ``Cancelled``, raises it into the task and catches it again at the
scope. That round trip is about a quarter of a sleep (49 → 36 µs a sleep under
the simulator's clock, 10 tasks), and collectors, cohorts and the writer's
batch window sleep once per tick or batch. Here the scope's deadline still
sets the timer, but the abort callback reschedules the task itself when it was
that deadline which fired; any other cancellation is raised as Trio raises it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

if TYPE_CHECKING:
    from trio.lowlevel import RaiseCancelT


async def sleep_until(deadline: float) -> None:
    """Waits until ``deadline`` on Trio's clock, as ``trio.sleep_until`` does.

    Always a checkpoint. One corner differs: if the deadline and a cancellation
    of an enclosing scope land in the same scheduler step, this returns and the
    cancellation is raised at the task's next checkpoint (Trio's raises it here).

    Raises:
        ValueError: ``deadline`` is NaN.
        trio.Cancelled: an enclosing scope was cancelled while sleeping.
    """
    if math.isnan(deadline):
        raise ValueError("sleep_until: the deadline is NaN")
    if deadline <= trio.current_time():
        await trio.lowlevel.checkpoint()
        return
    task = current_task()
    with trio.CancelScope(deadline=deadline) as scope:

        def abort(_raise_cancel: RaiseCancelT) -> Abort:
            if scope.cancel_called:  # only the deadline cancels this scope: time is up
                reschedule(task)
                return Abort.FAILED  # already rescheduled, with no exception
            return Abort.SUCCEEDED  # an enclosing scope: Trio raises Cancelled

        await wait_task_rescheduled(abort)


async def sleep(seconds: float) -> None:
    """Waits ``seconds`` (``sleep_until`` from now); zero or less is a checkpoint.

    Raises:
        ValueError: ``seconds`` is negative or NaN.
    """
    if not seconds >= 0:
        raise ValueError(f"sleep: seconds must be >= 0, got {seconds!r}")
    await sleep_until(trio.current_time() + seconds)
