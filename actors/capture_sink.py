"""Where a capture result goes: wrapped, stamped, and sent to the writer or counted as dropped.

Shared by both ways of capturing: a ``Collector`` (one task per method, for
components that may block) and a ``Cohort`` (one task per period, for components
that answer synchronously).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, final

import trio

from actors.components import Binary, Tabular
from actors.messages import CaptureMsg
from actors.ratelimit import RateLimitedLog

if TYPE_CHECKING:
    from actors.codec import JsonObject
    from actors.collector import CollectorStats
    from actors.components import Captured
    from actors.messages import InflightGauge, StreamSpec, WriterMsg

LOGGER = logging.getLogger("ferry.collector")

# How a method's response is wrapped in the stored Struct (spec §2.3).
_WRAP = {"Readings": "readings", "DoCommand": "docommand_output"}


@final
class CaptureSink:
    """Turns one method's capture results into writer messages, within its budget.

    Example::

        sink = CaptureSink(stream, "Readings", outbox, gauge, stats)
        sink.emit(requested_ns, received_ns, Tabular({"temp_c": 21.5}))
    """

    def __init__(
        self,
        stream: StreamSpec,
        method: str,
        outbox: trio.MemorySendChannel[WriterMsg],
        gauge: InflightGauge,
        stats: CollectorStats,
    ) -> None:
        self.stream = stream
        self._wrap = _WRAP.get(method)
        self._outbox = outbox
        self._gauge = gauge
        self.stats = stats
        self._errors = RateLimitedLog(LOGGER, interval=10.0)
        self._name = "/".join(stream.key[1:])
        self.tick: list[CaptureMsg] | None = None
        """Set by a cohort: readings are gathered here and sent once per tick."""

    def emit(self, requested: int, received: int, result: Captured) -> None:
        """Sends one result (a tabular reading, or each binary payload)."""
        if isinstance(result, Tabular):
            data: JsonObject = result.data if self._wrap is None else {self._wrap: result.data}
            self._send(
                CaptureMsg(
                    self.stream, self._gauge, requested, result.time_received_ns or received, data
                )
            )
            return
        for item in result:
            if not isinstance(item, Binary):
                self.failed(f"returned {type(item).__name__}, expected Binary")
                return
            self._send(
                CaptureMsg(
                    self.stream,
                    self._gauge,
                    requested,
                    item.time_received_ns or received,
                    payload=item.payload,
                    mime_type=item.mime_type,
                    annotations=item.annotations,
                )
            )

    def failed(self, reason: str) -> None:
        """Counts and (rate-limited) logs a failed capture."""
        self.stats.errors += 1
        self.stats.last_error = reason
        self._errors.log(
            logging.ERROR, trio.current_time(), "%s: capture failed: %s", self._name, reason
        )

    def withdraw(self, count: int) -> None:
        """Takes back ``count`` readings gathered for a tick the mailbox refused: dropped."""
        self._gauge.inflight -= count
        self.stats.captured -= count
        self._dropped(count)

    def _send(self, msg: CaptureMsg) -> None:
        gauge = self._gauge
        if gauge.inflight >= gauge.capacity:
            self._dropped()
            return
        tick = self.tick
        if tick is not None:
            tick.append(msg)
        else:
            try:
                self._outbox.send_nowait(msg)
            except trio.WouldBlock:
                self._dropped()
                return
        gauge.inflight += 1
        self.stats.captured += 1

    def _dropped(self, count: int = 1) -> None:
        self.stats.dropped += count
        self._errors.log(
            logging.WARNING,
            trio.current_time(),
            "%s: writer is behind, dropping readings (capture_queue_size %d)",
            self._name,
            self._gauge.capacity,
        )
