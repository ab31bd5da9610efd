"""The writer's core: the open capture files and everything that touches them.

Trio-free and synchronous: the writer actor calls ``process`` through the
blocking runner (a worker thread in production, inline in the simulator). The
store keeps one invariant that makes disk errors harmless: a message is either
not yet applied (it stays queued) or fully in a file buffer, and buffered bytes
are only dropped once the OS accepted them. So ``process`` can raise ``OSError``
at any point (ENOSPC, EIO) and be called again later: nothing is lost, nothing is
written twice.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors.codec import CaptureFileWriter, RecordEncoder, StructEncodeError
from actors.planted import Bug, planted

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from actors.messages import CaptureMsg, StreamKey, StreamSpec
    from actors.ports import FileSystem

LOGGER = logging.getLogger("ferry.writer")

# Appends never write by themselves: the store flushes explicitly.
_NO_AUTO_FLUSH = 1 << 62


@final
@dataclass
class _OpenFile:
    spec: StreamSpec
    writer: CaptureFileWriter
    opened_at: float


@final
@dataclass
class StoreStats:
    """What the store has done, for status and tests."""

    records_written: int = 0
    files_finished: int = 0
    encode_errors: int = 0
    last_encode_error: str = ""


@final
class CaptureStore:
    """Open capture files, keyed by stream; applies queued readings to them.

    Example::

        store = CaptureStore(fs)
        store.enqueue(msg)
        store.process(now=trio_time, wall_ns=clock.now_ns())  # may raise OSError; call again
    """

    def __init__(
        self,
        fs: FileSystem,
        *,
        fsync_interval_s: float = 1.0,
        on_record: Callable[[CaptureMsg], None] | None = None,
    ) -> None:
        """``on_record`` hears each reading once it is in a file's buffer (the
        simulator's checker; called on the thread that runs ``process``)."""
        self._fs = fs
        self._on_record = on_record
        self._fsync_interval = fsync_interval_s
        self._queue: deque[CaptureMsg] = deque()
        self._open: dict[StreamKey, _OpenFile] = {}
        self._unfinished: list[CaptureFileWriter] = []
        self._dirty: set[StreamKey] = set()
        self._rotate: set[StreamKey] = set()
        self._last_sync = 0.0
        self._encoder = RecordEncoder()
        self.done: list[CaptureMsg] = []
        self.finished: list[Path] = []
        self.stats = StoreStats()

    @property
    def queued(self) -> int:
        """Messages waiting to be applied."""
        return len(self._queue)

    def enqueue(self, msg: CaptureMsg) -> None:
        """Queues one reading; ``process`` writes it."""
        self._queue.append(msg)

    def request_rotate(self, keys: frozenset[StreamKey] | None) -> None:
        """Marks open files (all, or ``keys``) to be finished by the next ``process``."""
        self._rotate.update(self._open if keys is None else keys & self._open.keys())

    def open_files(self) -> list[Path]:
        """Paths of the ``.prog`` files currently open."""
        return [f.writer.path for f in self._open.values()]

    def process(self, now: float, wall_ns: int) -> None:
        """Applies every queued message, then flushes, fsyncs and rotates as due.

        ``now`` is Trio time (intervals only); ``wall_ns`` names new files.

        Raises:
            OSError: a disk error; state stays consistent, so call again later.
        """
        self._finish_unfinished()
        self._flush_dirty()
        while self._queue:
            self._apply(self._queue[0], now, wall_ns)
        self._rotate_due(now)
        self._finish_unfinished()
        self._flush_dirty()
        # Due-ness is tested as `now >= deadline`, the very sum next_deadline() returns:
        # `now - start >= interval` can be false at that deadline in floating point,
        # and the writer would wake at the same instant forever.
        if now >= self._sync_due():
            self.sync()
            self._last_sync = now

    def sync(self) -> None:
        """Writes and fsyncs every open file (bounds what a power cut can lose)."""
        for open_file in self._open.values():
            open_file.writer.sync()

    def finish_all(self) -> None:
        """Finishes every open file as ``.capture`` (shutdown). Retry after OSError."""
        self._rotate.update(self._open)
        self._rotate_due(float("inf"))
        self._finish_unfinished()

    def next_deadline(self, now: float) -> float:
        """When ``process`` next has timed work (an fsync or an age rotation)."""
        deadline = self._sync_due() if self._open else float("inf")
        for open_file in self._open.values():
            deadline = min(deadline, _age_due(open_file))
        return max(deadline, now)

    def _sync_due(self) -> float:
        return self._last_sync + self._fsync_interval

    def _apply(self, msg: CaptureMsg, now: float, wall_ns: int) -> None:
        if msg.stream.binary:
            self._write_binary(msg)
            return
        open_file = self._open.get(msg.stream.key)
        # ``is not`` first: a collector sends the same spec object with every
        # reading, and a dataclass ``!=`` compares it field by field.
        if open_file is not None and (
            (open_file.spec is not msg.stream and open_file.spec != msg.stream)
            or (open_file.writer.size >= msg.stream.max_file_bytes and open_file.writer.records)
        ):
            self._retire(msg.stream.key)
            open_file = None
        if msg.data is None:
            self._queue.popleft()
            self._encode_failed(msg, "tabular reading without data")
            return
        try:
            framed = self._encoder.tabular(
                msg.time_requested_ns, msg.time_received_ns, msg.data, msg.annotations
            )
        except StructEncodeError as exc:
            self._queue.popleft()
            self._encode_failed(msg, str(exc))
            return
        if open_file is None:
            open_file = self._open_new(msg.stream, now, wall_ns)  # may raise: msg stays queued
        self._queue.popleft()
        open_file.writer.append(framed)
        self._dirty.add(msg.stream.key)
        self._record_done(msg)

    def _write_binary(self, msg: CaptureMsg) -> None:
        payload = msg.payload or b""
        writer = CaptureFileWriter.create(
            msg.stream.directory,
            msg.time_received_ns,
            msg.stream.header,
            fs=self._fs,
            flush_bytes=_NO_AUTO_FLUSH,
        )  # may raise before anything exists: msg stays queued
        prefix = self._encoder.binary_prefix(
            msg.time_requested_ns, msg.time_received_ns, len(payload), msg.annotations
        )
        writer.append_parts(prefix, payload)
        self._queue.popleft()
        self._record_done(msg)
        self._unfinished.append(writer)
        self._finish_unfinished()

    def _open_new(self, spec: StreamSpec, now: float, wall_ns: int) -> _OpenFile:
        writer = CaptureFileWriter.create(
            spec.directory, wall_ns, spec.header, fs=self._fs, flush_bytes=_NO_AUTO_FLUSH
        )
        open_file = _OpenFile(spec, writer, now)
        self._open[spec.key] = open_file
        return open_file

    def _retire(self, key: StreamKey) -> None:
        open_file = self._open.pop(key)
        if planted(Bug.DROP_ON_ROTATE):  # the simulator's planted bug: a lost buffer
            open_file.writer.drop_unwritten()
        self._dirty.discard(key)
        self._rotate.discard(key)
        self._unfinished.append(open_file.writer)

    def _rotate_due(self, now: float) -> None:
        for key, open_file in list(self._open.items()):
            if key in self._rotate or now >= _age_due(open_file):
                self._retire(key)
        self._rotate.clear()

    def _finish_unfinished(self) -> None:
        while self._unfinished:
            writer = self._unfinished[0]
            path = writer.finish()
            self._unfinished.pop(0)
            self.stats.files_finished += 1
            self.finished.append(path)

    def _flush_dirty(self) -> None:
        for key in list(self._dirty):
            open_file = self._open.get(key)
            if open_file is not None and open_file.writer.size - open_file.writer.written >= (
                open_file.spec.buffer_bytes
            ):
                open_file.writer.flush()
                self._dirty.discard(key)

    def _record_done(self, msg: CaptureMsg) -> None:
        self.stats.records_written += 1
        self.done.append(msg)
        if self._on_record is not None:
            self._on_record(msg)

    def _encode_failed(self, msg: CaptureMsg, reason: str) -> None:
        self.stats.encode_errors += 1
        self.stats.last_encode_error = f"{'/'.join(msg.stream.key)}: {reason}"
        self.done.append(msg)
        LOGGER.warning(
            "dropping a reading that cannot be encoded: %s", self.stats.last_encode_error
        )


def _age_due(open_file: _OpenFile) -> float:
    """When an open file reaches its maximum age and must be finished."""
    return open_file.opened_at + open_file.spec.max_file_age_s
