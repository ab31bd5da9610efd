"""The cohort actor: captures every synchronous method that shares one period.

For components that implement ``NowaitCapture`` (answers without waiting), one
task per capture frequency wakes on the deadline schedule ``t0 + k / hz`` and calls
each member's ``capture_nowait`` inline. A hundred collectors at 100 Hz then cost
100 wake-ups a second instead of 10,000 (docs/performance.md). Timing rules are
the collector's: a tick already past is skipped and counted, never bunched. A
member that raises is counted and logged by its sink; the others are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.components import SkipReading
from actors.histogram import bucket

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors.capture_sink import CaptureSink
    from actors.codec import JsonValue
    from actors.components import Captured
    from actors.messages import StreamKey
    from actors.ports import WallClock


@final
@dataclass
class CohortMember:
    """One (resource, method) captured by a cohort."""

    method: str
    params: Mapping[str, JsonValue]
    capture: Callable[[str, Mapping[str, JsonValue]], Captured]
    sink: CaptureSink


@final
class Cohort:
    """Captures its members once per period from a single task.

    Members are added and removed while it runs (``CaptureRuntime.apply``); a new
    member's first capture is at the cohort's next tick, within one period.

    Example::

        cohort = Cohort(100.0, clock)
        cohort.add(key, CohortMember("Readings", {}, sensor.capture_nowait, sink))
        await nursery.start(cohort.run)
    """

    def __init__(self, frequency_hz: float, clock: WallClock) -> None:
        self.frequency_hz = frequency_hz
        self._interval = 1.0 / frequency_hz
        self._clock = clock
        self.members: dict[StreamKey, CohortMember] = {}

    def add(self, key: StreamKey, member: CohortMember) -> None:
        """Starts capturing ``member`` from the next tick on."""
        if member.sink.stats.started_at is None:
            member.sink.stats.started_at = trio.current_time()
        self.members[key] = member

    def remove(self, key: StreamKey) -> None:
        """Stops capturing ``key`` (nothing is in flight: captures are synchronous)."""
        self.members.pop(key, None)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Ticks until cancelled; the first tick is immediate."""
        interval = self._interval
        start = trio.current_time()
        task_status.started()
        tick = 0
        while True:
            due = start + tick * interval
            await trio.sleep_until(due)
            late = trio.current_time() - due
            late_bucket = bucket(late)
            members = list(self.members.values())
            for member in members:
                stats = member.sink.stats
                stats.lateness.add_at(late_bucket, late)
                stats.ticks += 1
                self._capture(member)
            skipped = int((trio.current_time() - due) // interval)
            if skipped:
                for member in members:
                    member.sink.stats.missed_ticks += skipped
            tick += 1 + skipped

    def _capture(self, member: CohortMember) -> None:
        requested = self._clock.now_ns()
        try:
            result = member.capture(member.method, member.params)
        except SkipReading:
            member.sink.stats.filtered += 1
            return
        except Exception as exc:
            member.sink.failed(f"{type(exc).__name__}: {exc}")
            return
        member.sink.emit(requested, self._clock.now_ns(), result)
