"""The collector actor: captures one (resource, method) on a deadline schedule.

Ticks are at ``t0 + k / hz`` (``actors.timers.sleep_until``), so timing never drifts; a
tick that is already past when the previous capture returns is skipped and
counted, never bunched. Each component call is bounded by a timeout. Results go
to the writer's mailbox without blocking: when the method's in-flight budget
(``capture_queue_size``) is used up, the reading is dropped and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.capture_sink import CaptureSink
from actors.components import SkipReading
from actors.histogram import LatencyHistogram
from actors.timers import sleep_until

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actors.codec import JsonValue
    from actors.components import Component
    from actors.messages import InflightGauge, StreamSpec, WriterMsg
    from actors.ports import WallClock

LOGGER = logging.getLogger("ferry.collector")


@final
@dataclass(frozen=True)
class CollectorSettings:
    """What one collector needs from the config."""

    stream: StreamSpec
    method: str
    frequency_hz: float
    params: Mapping[str, JsonValue]
    timeout_s: float

    @property
    def interval(self) -> float:
        """Seconds between ticks."""
        return 1.0 / self.frequency_hz


@dataclass
class CollectorStats:
    """Counters of one collector, kept across restarts and reconfigures."""

    ticks: int = 0
    captured: int = 0
    missed_ticks: int = 0
    dropped: int = 0
    errors: int = 0
    timeouts: int = 0
    filtered: int = 0
    last_error: str = ""
    started_at: float | None = None
    lateness: LatencyHistogram = field(default_factory=LatencyHistogram, repr=False)


def default_timeout(frequency_hz: float) -> float:
    """A component call may take two periods, at least 1 s and at most 60 s."""
    return min(max(2.0 / frequency_hz, 1.0), 60.0)


@final
class Collector:
    """Captures one method of one component into the writer's mailbox.

    Example::

        collector = Collector(settings, component, outbox, gauge, stats, clock)
        await nursery.start(collector.run)
    """

    def __init__(
        self,
        settings: CollectorSettings,
        component: Component,
        outbox: trio.MemorySendChannel[WriterMsg],
        gauge: InflightGauge,
        stats: CollectorStats,
        clock: WallClock,
    ) -> None:
        self.settings = settings
        self._component = component
        self.stats = stats
        self._clock = clock
        self._sink = CaptureSink(settings.stream, settings.method, outbox, gauge, stats)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Captures on schedule until cancelled; the first tick is immediate."""
        interval = self.settings.interval
        start = trio.current_time()
        if self.stats.started_at is None:
            self.stats.started_at = start
        task_status.started()
        tick = 0
        while True:
            due = start + tick * interval
            await sleep_until(due)
            self.stats.lateness.add(trio.current_time() - due)
            self.stats.ticks += 1
            await self._capture_once()
            behind = trio.current_time() - due
            skipped = int(behind // interval)  # ticks already past: skip, don't bunch
            self.stats.missed_ticks += skipped
            tick += 1 + skipped

    async def _capture_once(self) -> None:
        requested = self._clock.now_ns()
        # One scope does both jobs (it is the hot path): shielded, so a stop
        # (reconfigure, shutdown) lets the capture in flight finish and delivers it,
        # with Cancelled landing at the next sleep; its own deadline is the timeout.
        with trio.CancelScope(
            shield=True, deadline=trio.current_time() + self.settings.timeout_s
        ) as scope:
            try:
                result = await self._component.capture(self.settings.method, self.settings.params)
            except SkipReading:
                self.stats.filtered += 1
                return
            except Exception as exc:
                self._sink.failed(f"{type(exc).__name__}: {exc}")
                return
        if scope.cancelled_caught:
            self.stats.timeouts += 1
            self._sink.failed(f"no answer within {self.settings.timeout_s:g}s")
            return
        self._sink.emit(requested, self._clock.now_ns(), result)
