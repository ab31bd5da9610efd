"""The collector actor: captures one (resource, method) on a deadline schedule.

Ticks are at ``t0 + k / hz`` (``trio.sleep_until``), so timing never drifts; a
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

from actors.components import Binary, SkipReading, Tabular
from actors.histogram import LatencyHistogram
from actors.messages import CaptureMsg
from actors.ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from collections.abc import Mapping

    from actors.codec import JsonObject, JsonValue
    from actors.components import Captured, Component
    from actors.messages import InflightGauge, StreamSpec, WriterMsg
    from actors.ports import WallClock

LOGGER = logging.getLogger("ferry.collector")

# How a method's response is wrapped in the stored Struct (spec §2.3).
_WRAP = {"Readings": "readings", "DoCommand": "docommand_output"}


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
        self._outbox = outbox
        self._gauge = gauge
        self.stats = stats
        self._clock = clock
        self._errors = RateLimitedLog(LOGGER, interval=10.0)
        self._name = "/".join(settings.stream.key[1:])

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
            await trio.sleep_until(due)
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
                self._failed(f"{type(exc).__name__}: {exc}")
                return
        if scope.cancelled_caught:
            self.stats.timeouts += 1
            self._failed(f"no answer within {self.settings.timeout_s:g}s")
            return
        self._emit(requested, self._clock.now_ns(), result)

    def _emit(self, requested: int, received: int, result: Captured) -> None:
        if isinstance(result, Tabular):
            data: JsonObject = result.data
            wrap = _WRAP.get(self.settings.method)
            if wrap is not None:
                data = {wrap: data}
            self._send(
                CaptureMsg(
                    self.settings.stream,
                    self._gauge,
                    requested,
                    result.time_received_ns or received,
                    data,
                )
            )
            return
        for item in result:
            if not isinstance(item, Binary):
                self._failed(f"returned {type(item).__name__}, expected Binary")
                return
            self._send(
                CaptureMsg(
                    self.settings.stream,
                    self._gauge,
                    requested,
                    item.time_received_ns or received,
                    payload=item.payload,
                    mime_type=item.mime_type,
                    annotations=item.annotations,
                )
            )

    def _send(self, msg: CaptureMsg) -> None:
        if self._gauge.inflight >= self._gauge.capacity:
            self._dropped()
            return
        try:
            self._outbox.send_nowait(msg)
        except trio.WouldBlock:
            self._dropped()
            return
        self._gauge.inflight += 1
        self.stats.captured += 1

    def _dropped(self) -> None:
        self.stats.dropped += 1
        self._errors.log(
            logging.WARNING,
            trio.current_time(),
            "%s: writer is behind, dropping readings (capture_queue_size %d)",
            self._name,
            self._gauge.capacity,
        )

    def _failed(self, reason: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = reason
        self._errors.log(
            logging.ERROR, trio.current_time(), "%s: capture failed: %s", self._name, reason
        )
