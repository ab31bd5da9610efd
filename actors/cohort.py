"""The cohort actor: captures every synchronous method that shares one period.

For components that implement ``NowaitCapture`` (answers without waiting), one
task per capture frequency wakes on the deadline schedule ``t0 + k / hz`` and calls
each member's ``capture_nowait`` inline. A hundred collectors at 100 Hz then cost
100 wake-ups a second instead of 10,000 (docs/performance.md). Timing rules are
the collector's: a tick already past is skipped and counted, never bunched. A
member that raises is counted and logged by its sink; the others are untouched.
A tick's readings reach the writer as one ``CaptureBatch``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.components import SkipReading
from actors.histogram import bucket
from actors.messages import CaptureBatch
from actors.timers import sleep_until

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from actors.capture_sink import CaptureSink
    from actors.codec import JsonValue
    from actors.components import Captured
    from actors.messages import CaptureMsg, StreamKey, WriterMsg
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

        cohort = Cohort(100.0, clock, outbox)
        cohort.add(key, CohortMember("Readings", {}, sensor.capture_nowait, sink))
        await nursery.start(cohort.run)
    """

    def __init__(
        self, frequency_hz: float, clock: WallClock, outbox: trio.MemorySendChannel[WriterMsg]
    ) -> None:
        self.frequency_hz = frequency_hz
        self._interval = 1.0 / frequency_hz
        self._clock = clock
        self._outbox = outbox
        self._tick: list[CaptureMsg] = []
        self.members: dict[StreamKey, CohortMember] = {}

    def add(self, key: StreamKey, member: CohortMember) -> None:
        """Starts capturing ``member`` from the next tick on."""
        if member.sink.stats.started_at is None:
            member.sink.stats.started_at = trio.current_time()
        member.sink.tick = self._tick
        self.members[key] = member

    def remove(self, key: StreamKey) -> None:
        """Stops capturing ``key`` (nothing is in flight: captures are synchronous)."""
        member = self.members.pop(key, None)
        if member is not None:
            member.sink.tick = None

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
            await sleep_until(due)
            late = trio.current_time() - due
            late_bucket = bucket(late)
            members = list(self.members.values())
            for member in members:
                stats = member.sink.stats
                stats.lateness.add_at(late_bucket, late)
                stats.ticks += 1
                self._capture(member)
            if self._tick:
                self._send_tick()
            skipped = int((trio.current_time() - due) // interval)
            if skipped:
                for member in members:
                    member.sink.stats.missed_ticks += skipped
            tick += 1 + skipped

    def _send_tick(self) -> None:
        """Sends the tick's readings as one message; if the mailbox is full, each is dropped."""
        msgs = self._tick.copy()
        self._tick.clear()
        try:
            self._outbox.send_nowait(CaptureBatch(msgs))
        except trio.WouldBlock:
            for key, count in Counter(m.stream.key for m in msgs).items():
                self.members[key].sink.withdraw(count)

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
