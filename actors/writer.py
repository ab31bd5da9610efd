"""The writer/rotator actor: drains the collectors' mailbox into capture files.

A Trio shell around ``CaptureStore``: it batches readings from the mailbox, runs
the store's blocking work through the ``BlockingRunner``, retries disk errors
with backoff (taking no new readings meanwhile, so collectors drop and count
instead of memory growing), answers rotation requests, and on shutdown drains
the mailbox and finishes every open ``.prog`` as ``.capture``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, final

import trio

from actors.messages import CaptureBatch, CaptureMsg, RotateRequest
from actors.timers import sleep

if TYPE_CHECKING:
    import random
    from collections.abc import Callable
    from pathlib import Path

    from actors.capture_store import CaptureStore
    from actors.messages import WriterMsg
    from actors.ports import BlockingRunner, WallClock

LOGGER = logging.getLogger("ferry.writer")

BATCH = 4096
# While readings keep coming (the last batch ended less than a window ago), let
# more arrive after a batch's first one before writing: one wake-up and one
# thread hop per window instead of one per reading. A reading after a quiet spell
# is written at once: nothing else is coming to batch it with, and waiting would
# only add a wake-up (and latency). Far below the fsync interval, so it adds
# nothing to what a crash can lose.
BATCH_WINDOW_S = 0.01
SHUTDOWN_BOUND_S = 10.0
_BACKOFF_INITIAL = 0.1
_BACKOFF_MAX = 30.0


@dataclass
class WriterStats:
    """Disk-error state of the writer, for status."""

    io_errors: int = 0
    last_io_error: str = ""
    retrying: bool = False
    paused: bool = False
    """Capture is paused (free disk below ``min_free_bytes``): readings are dropped, not written."""
    dropped_paused: int = 0
    """Readings dropped while paused."""


@final
class Writer:
    """Owns the capture files; one per agent.

    Example::

        send, receive = trio.open_memory_channel[WriterMsg](10_000)
        writer = Writer(receive, store, runner, clock, rng)
        await nursery.start(writer.run)
    """

    def __init__(
        self,
        inbox: trio.MemoryReceiveChannel[WriterMsg],
        store: CaptureStore,
        runner: BlockingRunner,
        clock: WallClock,
        rng: random.Random,
        *,
        on_finished: Callable[[list[Path]], None] | None = None,
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._runner = runner
        self._clock = clock
        self._rng = rng
        self._on_finished = on_finished
        self._waiting: list[RotateRequest] = []
        self._last_batch_end = -math.inf
        self.stats = WriterStats()

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Writes until cancelled; then drains and finishes every open file."""
        task_status.started()
        try:
            while True:
                deadline = self._store.next_deadline(trio.current_time())
                with trio.move_on_at(deadline) as idle:
                    self._accept(await self._inbox.receive())
                if (
                    not idle.cancelled_caught
                    and trio.current_time() - self._last_batch_end < BATCH_WINDOW_S
                ):
                    await sleep(BATCH_WINDOW_S)
                self._accept_ready()
                await self._process()
                self._last_batch_end = trio.current_time()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_BOUND_S) as scope:
                await self._shutdown()
            if scope.cancelled_caught:
                LOGGER.error(
                    "writer shutdown took over %ss; open files stay .prog for recovery",
                    SHUTDOWN_BOUND_S,
                )

    def pause(self, paused: bool) -> None:
        """Stops (or resumes) writing readings; the retention actor's ``min_free_bytes`` guard."""
        if paused != self.stats.paused:
            self.stats.paused = paused
            if paused:
                LOGGER.error("writer: free disk below min_free_bytes: capture paused")
            else:
                LOGGER.warning("writer: free disk back above min_free_bytes: capture resumed")

    def _accept(self, msg: WriterMsg) -> None:
        if isinstance(msg, CaptureBatch):
            for reading in msg.msgs:
                self._accept_reading(reading)
        elif isinstance(msg, CaptureMsg):
            self._accept_reading(msg)
        elif isinstance(msg, RotateRequest):
            self._store.request_rotate(msg.keys)
            self._waiting.append(msg)
        else:  # pragma: no cover - the union is closed; guard against a new kind
            LOGGER.error("writer: unknown message %r", msg)

    def _accept_reading(self, msg: CaptureMsg) -> None:
        if self.stats.paused:
            msg.gauge.inflight -= 1  # dropped, and counted, instead of written
            self.stats.dropped_paused += 1
        else:
            self._store.enqueue(msg)

    def _accept_ready(self) -> None:
        while self._store.queued < BATCH:
            try:
                self._accept(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    async def _process(self) -> None:
        await self._store_until_ok(finish=False)

    async def _store_until_ok(self, *, finish: bool) -> None:
        """Runs the store (and on shutdown finishes every file) until no disk error."""
        failures = 0
        while True:
            try:
                now, wall_ns = trio.current_time(), self._clock.now_ns()
                await self._runner.run(self._store.process, now, wall_ns)
                if finish:
                    await self._runner.run(self._store.finish_all)
            except OSError as exc:
                failures += 1
                self._settle()
                self._io_failed(exc, failures)
                await trio.sleep(self._backoff(failures))
                continue
            break
        if self.stats.retrying:
            LOGGER.warning("writer: disk writes work again after %d failed attempts", failures)
            self.stats.retrying = False
        self._settle()
        for request in self._waiting:
            request.done.set()
        self._waiting.clear()

    def _settle(self) -> None:
        """Releases gauge slots of written readings and reports finished files."""
        for msg in self._store.done:
            msg.gauge.inflight -= 1
            msg.gauge.written += 1
        self._store.done.clear()
        if self._store.finished:
            finished, self._store.finished = self._store.finished, []
            if self._on_finished is not None:
                self._on_finished(finished)

    def _io_failed(self, exc: OSError, failures: int) -> None:
        self.stats.io_errors += 1
        self.stats.last_io_error = f"{type(exc).__name__}: {exc}"
        if not self.stats.retrying:
            # Logged once per state change, not on every retry.
            LOGGER.error("writer: disk write failed, retrying with backoff: %s", exc)
            self.stats.retrying = True
        elif math.log2(failures).is_integer():
            LOGGER.warning("writer: still failing after %d attempts: %s", failures, exc)

    def _backoff(self, failures: int) -> float:
        base = min(_BACKOFF_INITIAL * 2.0 ** (failures - 1), _BACKOFF_MAX)
        return base * (0.5 + self._rng.random() / 2)

    async def _shutdown(self) -> None:
        self._accept_all_remaining()
        await self._store_until_ok(finish=True)

    def _accept_all_remaining(self) -> None:
        while True:
            try:
                self._accept(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
