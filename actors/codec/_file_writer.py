"""The capture-file writer: appends framed records to a ``.prog`` and finishes it as ``.capture``.

It shares only the file layout with the reader and crash recovery in ``_file``,
so it lives apart from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from actors.adapters.os_fs import OsFileSystem
from actors.codec._layout import CAPTURE_EXT, PROG_EXT, file_stem
from actors.durable_dirs import ensure_dir
from actors.planted import Bug, planted

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import FileSystem, WritableFile

# Bytes buffered in the writer before they are handed to the OS.
DEFAULT_FLUSH_BYTES = 64 * 1024
_NAME_ATTEMPTS = 10_000


@final
class CaptureFileWriter:
    """Appends framed records to a new ``.prog`` file and finishes it as ``.capture``.

    Records are buffered in memory up to ``flush_bytes`` and then written. A write
    that fails (``ENOSPC``, ``EIO``) raises, and keeps every unwritten byte: the
    file on disk stays a prefix of the intended stream, and a later ``flush()``
    continues exactly where the failed one stopped.

    A failed fsync is not retried on the same file descriptor: Linux reports a
    writeback error once and may then drop the unwritten pages, so a second
    fsync can succeed over lost bytes. The writer keeps every byte appended since
    its last good fsync (at most one fsync interval of data), and after a failed
    fsync it truncates the file to what that fsync made durable, reopens it and
    writes those bytes again before trusting an fsync. Not thread-safe.

    Example::

        writer = CaptureFileWriter.create(directory, wall_ns, encode_header(meta))
        writer.append(RecordEncoder().tabular(t0, t1, {"readings": {"x": 1}}))
        final_path = writer.finish()
    """

    def __init__(
        self, fs: FileSystem, path: Path, handle: WritableFile, header: bytes, flush_bytes: int
    ) -> None:
        self._fs = fs
        self.path = path
        self._handle: WritableFile | None = handle
        self._flush_bytes = flush_bytes
        self._pending: list[bytes] = [header]
        self._pending_bytes = len(header)
        self._written = 0
        self._synced = 0
        """Bytes a successful fsync made durable."""
        self._unsynced: list[bytes] = []
        """The blocks written since then (not yet durable), to write again after a failed
        fsync. Whole blocks, as ``flush`` joined them: the records themselves are freed."""
        self._fsync_failed = False
        self._dir_synced = False
        self._renamed = False
        self.records = 0
        self.finished_path: Path | None = None

    @classmethod
    def create(
        cls,
        directory: Path,
        wall_ns: int,
        header: bytes,
        *,
        fs: FileSystem | None = None,
        flush_bytes: int = DEFAULT_FLUSH_BYTES,
    ) -> CaptureFileWriter:
        """Creates ``<directory>/<time>.prog`` with a name no other file has or had.

        If a ``.prog`` or ``.capture`` with the time-based name exists (two files in
        one microsecond), the time is moved on by a microsecond until it is free,
        so a file is never overwritten.

        Args:
            directory: the collector's directory (created if missing, mode 0700).
            wall_ns: wall-clock time for the name.
            header: the framed header (``encode_header``).
        """
        fs = fs if fs is not None else OsFileSystem()
        ensure_dir(fs, directory)
        ns = wall_ns - wall_ns % 1000
        for _ in range(_NAME_ATTEMPTS):
            stem = file_stem(ns)
            ns += 1000
            if fs.exists(directory / (stem + CAPTURE_EXT)):
                continue
            path = directory / (stem + PROG_EXT)
            try:
                handle = fs.create_new(path)
            except FileExistsError:
                continue
            return cls(fs, path, handle, header, flush_bytes)
        raise FileExistsError(f"{directory}: no free file name near {file_stem(wall_ns)}")

    @property
    def size(self) -> int:
        """Bytes appended so far, header included, whether written yet or not."""
        return self._written + self._pending_bytes

    @property
    def written(self) -> int:
        """Bytes handed to the OS (not necessarily fsynced)."""
        return self._written

    def append(self, framed: bytes) -> None:
        """Adds one framed record; writes the buffer once it reaches ``flush_bytes``."""
        self._require_open()  # after finish() the record would be buffered and lost
        self._pending.append(framed)
        self._pending_bytes += len(framed)
        self.records += 1
        if self._pending_bytes >= self._flush_bytes:
            self.flush()

    def append_parts(self, *parts: bytes) -> None:
        """Adds one framed record given in pieces (e.g. a binary prefix and its payload)."""
        self._require_open()
        for part in parts:
            self._pending.append(part)
            self._pending_bytes += len(part)
        self.records += 1
        if self._pending_bytes >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Writes buffered bytes to the file (not fsynced). Retry after an error."""
        if not self._pending_bytes:
            return
        handle = self._require_open()
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                n = handle.write(view[done:])
                if n <= 0:
                    raise OSError(f"{self.path}: write made no progress")
                done += n
        finally:
            self._written += done
            rest = b""
            if done < len(view):
                rest = bytes(view[done:])
                if done:
                    self._unsynced.append(bytes(view[:done]))
            elif done:
                self._unsynced.append(data)
            view.release()
            self._pending = [rest] if rest else []
            self._pending_bytes = len(rest)

    def sync(self) -> None:
        """Writes and fsyncs everything appended, so a power cut cannot lose it.

        Raises:
            OSError: a write or the fsync failed; call again later (after a failed
                fsync, the next call first writes the unsynced bytes again).
        """
        if self._fsync_failed:
            self._rewrite_unsynced()
        self.flush()
        try:
            self._require_open().fsync()
        except OSError:
            self._fsync_failed = not planted(Bug.BLIND_FSYNC_RETRY)
            raise
        self._synced = self._written
        self._unsynced = []
        if not self._dir_synced:
            self._fs.fsync_dir(self.path.parent)
            self._dir_synced = True

    def finish(self) -> Path:
        """Makes the file durable and renames it to ``.capture``; returns the new path.

        Idempotent, and safe to call again after it raised.
        """
        if self.finished_path is not None:
            return self.finished_path
        if self._handle is not None or self._fsync_failed:  # (a failed rewrite closed it)
            if planted(Bug.RENAME_BEFORE_FSYNC):
                self.flush()
            else:
                # sync() also fsyncs the directory for the .prog's name. A file finished
                # at once needs it too: a power cut between the rename and its fsync then
                # brings the .prog back for recovery, not nothing (the simulator showed
                # a camera frame lost when this fsync was skipped).
                self.sync()
            self._require_open().close()
            self._handle = None
        target = self.path.with_suffix(CAPTURE_EXT)
        if not self._renamed:  # a retry after a failed directory fsync must not rename again
            if self._fs.exists(target):
                raise FileExistsError(f"{target}: refusing to overwrite an existing capture file")
            self._fs.rename(self.path, target)
            self._renamed = True
        self._fs.fsync_dir(target.parent)
        self.finished_path = target
        return target

    def _rewrite_unsynced(self) -> None:
        """After a failed fsync: the file cut back to its durable bytes, the rest written anew.

        Each step may raise ``OSError``; the next ``sync`` starts over from the
        first, so no byte is lost or written twice.
        """
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._fs.truncate(self.path, self._synced)  # durable: the seam fsyncs it
        self._handle = self._fs.open_append(self.path)
        self._written = self._synced
        self._pending = [*self._unsynced, *self._pending]
        self._pending_bytes = sum(len(part) for part in self._pending)
        self._unsynced = []
        self._fsync_failed = False

    def drop_unwritten(self) -> None:
        """Forgets the records not yet written (only the simulator's planted bug does this)."""
        if self._written:  # never the header
            self._pending = []
            self._pending_bytes = 0

    def close_unfinished(self) -> None:
        """Closes the file without finishing it (it stays ``.prog`` for recovery)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _require_open(self) -> WritableFile:
        if self._handle is None:
            raise ValueError(f"{self.path}: writer is closed")
        return self._handle
