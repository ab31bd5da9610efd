"""Capture files on disk: a streaming reader and crash recovery.

Layout (spec §2.3): a varint length, then the ``DataCaptureMetadata`` header, then
for each reading a varint length and a ``SensorData``. A file is written as
``<stem>.prog`` and becomes ``<stem>.capture`` only after its bytes are fsynced;
the rename is followed by an fsync of the directory, so a finished file is
durable and a crash leaves, at worst, a ``.prog`` with a torn last record —
which ``recover_prog`` truncates to its last complete record and finishes.
The append-only writer is in ``_file_writer``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, TypeVar, final

from actors.adapters.os_fs import OsFileSystem
from actors.codec._layout import CAPTURE_EXT
from actors.codec._pbwire import WireError, decode_varint
from actors.codec._records import SensorRecord, decode_header
from actors.codec._records_decode import decode_sensor_data

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from types import TracebackType

    from actors.ports import FileSystem
    from protos.gen.viam.app.datasync import v1 as datasync

# A record larger than this is taken as a corrupt length, not a huge reading.
DEFAULT_MAX_RECORD_BYTES = 1 << 30
# ``frames()`` reads a file of at most this much at once (a tabular upload nearly always).
_WHOLE_READ_BYTES = 16 << 20
T = TypeVar("T")


class CaptureFileError(Exception):
    """A capture file that cannot be read in full; names the file and byte offset.

    ``offset`` is where the problem starts: for a truncated file, the end of its
    last complete record (everything before it is intact).
    """

    def __init__(self, path: Path | str, offset: int, reason: str) -> None:
        super().__init__(f"{path}: offset {offset}: {reason}")
        self.path = str(path)
        self.offset = offset
        self.reason = reason


class TruncatedCaptureFile(CaptureFileError):
    """The file ends inside its header or a record (a crash or a partial copy)."""


class CorruptCaptureFile(CaptureFileError):
    """Bytes that are not a capture file's framing or messages."""


@final
@dataclass(frozen=True, slots=True)
class RawRecord:
    """One framed record: its offset (of the length prefix), end offset and message bytes."""

    offset: int
    end: int
    body: bytes


@final
class CaptureFileReader:
    """Reads a capture file record by record, never loading the whole file (but
    ``frames()`` reads a small one at once).

    The header is read on construction. Iterate ``records()`` (decoded) or
    ``raw_records()`` (bytes only); both raise ``TruncatedCaptureFile`` or
    ``CorruptCaptureFile`` after the last intact record, and ``good_offset`` then
    says how far the file is intact.

    Example::

        with CaptureFileReader(path) as reader:
            for offset, record in reader.records():
                ...
    """

    def __init__(
        self,
        path: Path,
        *,
        fs: FileSystem | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        data: bytes | None = None,
    ) -> None:
        self.path = path
        self._fs: FileSystem = fs if fs is not None else OsFileSystem()
        self._max = max_record_bytes
        # ``data``: a whole file already in memory (the cloud's UploadFiles); ``path``
        # then only names it in errors.
        self._in_memory = data is not None
        self._data = data
        self._file: BinaryIO = self._fs.open_read(path) if data is None else io.BytesIO(data)
        self._pos = 0
        try:
            self._size = self._fs.size(path) if data is None else len(data)
            header = self._next_frame(header=True)
            if header is None:
                raise TruncatedCaptureFile(path, 0, "empty file: no header")
            try:
                self.header: datasync.DataCaptureMetadata = decode_header(header[2])
            except WireError as exc:
                raise CorruptCaptureFile(path, 0, f"unreadable header: {exc}") from None
        except BaseException:
            self._file.close()
            raise
        self.header_end = self._pos
        self.good_offset = self._pos

    def __enter__(self) -> CaptureFileReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the file."""
        self._file.close()

    def raw_records(self) -> Iterator[RawRecord]:
        """Yields each record's bytes in order, checking only the framing."""
        next_frame = self._next_frame
        while (frame := next_frame(header=False)) is not None:
            self.good_offset = frame[1]
            yield RawRecord(*frame)

    def frames(self) -> Iterator[tuple[int, int, bytes]]:
        """Yields ``(offset, end, body)`` for each record: ``raw_records`` as plain
        tuples, for loops that handle every record of a file (the cloud's ingest).

        The rest of a file of at most ``_WHOLE_READ_BYTES`` is read at once and
        cut into records in memory (a snapshot: a live ``.prog`` that grows
        meanwhile ends where it was). Anything unusual in a record's framing is
        left to the record-by-record reader, which reports it.
        """
        data = self._data
        if data is None and self._size - self._pos <= _WHOLE_READ_BYTES:
            data = self._file.read()
            self._file.close()
            self._file = io.BytesIO(data)
            self._in_memory = True
            base = self._pos
            i = 0
        else:
            base = 0
            i = self._pos
        if data is not None:
            # The common case inline: a one-byte or in-buffer varint length, then the body.
            n = len(data)
            limit = self._max
            while i < n:
                length = data[i]
                if length < 0x80:
                    start = i + 1
                else:
                    try:
                        length, start = decode_varint(data, i, n)
                    except WireError:
                        break
                end = start + length
                if length == 0 or length > limit or end > n:
                    break
                self.good_offset = base + end
                yield base + i, base + end, data[start:end]
                i = end
            self._pos = base + i
            self._file.seek(i)
        next_frame = self._next_frame
        while (frame := next_frame(header=False)) is not None:
            self.good_offset = frame[1]
            yield frame

    def records(self) -> Iterator[tuple[int, SensorRecord]]:
        """Yields ``(offset, record)`` for each record, decoded, one read at a time."""
        return self._decode_each(self._frame_by_frame(), decode_sensor_data)

    def decoded(self, decode: Callable[[bytes], T]) -> Iterator[tuple[int, T]]:
        """Yields ``(offset, decode(body))`` for each record, cut as ``frames()`` cuts
        them; a ``WireError`` from ``decode`` is the file's corruption at that record."""
        return self._decode_each(self.frames(), decode)

    def _frame_by_frame(self) -> Iterator[tuple[int, int, bytes]]:
        next_frame = self._next_frame
        while (frame := next_frame(header=False)) is not None:
            yield frame

    def _decode_each(
        self, frames: Iterator[tuple[int, int, bytes]], decode: Callable[[bytes], T]
    ) -> Iterator[tuple[int, T]]:
        """Decodes each frame; ``good_offset`` passes a record only once it decodes."""
        for offset, end, body in frames:
            try:
                value = decode(body)
            except WireError as exc:
                self.good_offset = offset
                raise CorruptCaptureFile(
                    self.path, offset, f"record is not a SensorData: {exc}"
                ) from None
            self.good_offset = end
            yield offset, value

    def _next_frame(self, *, header: bool) -> tuple[int, int, bytes] | None:
        """The next frame as ``(offset, end, body)``; ``good_offset`` is left to the
        caller, which knows when a record counts as intact (framed, or decoded too)."""
        start = self._pos
        # The length varint; nearly always one byte (a record under 128 bytes) or two.
        byte = self._file.read(1)
        if byte and byte[0] < 0x80:
            length = byte[0]
            self._pos = start + 1
        else:
            found = self._read_length(start, byte, "header" if header else "record")
            if found is None:
                return None
            length = found
        if length == 0 and not header:
            raise CorruptCaptureFile(
                self.path, start, "zero-length record (zero-filled or torn tail?)"
            )
        what = "header" if header else "record"
        if length > self._max:
            raise CorruptCaptureFile(
                self.path, start, f"{what} length {length} exceeds the {self._max}-byte limit"
            )
        body_start = self._pos
        if length > self._size - body_start and not self._in_memory:
            self._size = self._fs.size(self.path)  # a live .prog may have grown
        if length > self._size - body_start:
            raise TruncatedCaptureFile(
                self.path,
                start,
                f"{what} declares {length} bytes but only {max(self._size - body_start, 0)} remain",
            )
        body = self._file.read(length)
        if len(body) < length:
            raise TruncatedCaptureFile(
                self.path, start, f"{what} declares {length} bytes, read {len(body)}"
            )
        self._pos = body_start + length
        return start, self._pos, body

    def _read_length(self, start: int, first: bytes, what: str) -> int | None:
        """Reads the rest of a length varint whose first byte (or b"" at EOF) is ``first``."""
        result = 0
        shift = 0
        read = self._file.read
        byte = first
        for i in range(10):
            if i:
                byte = read(1)
            if not byte:
                if i == 0:
                    return None
                raise TruncatedCaptureFile(self.path, start, f"file ends inside a {what} length")
            value = byte[0]
            result |= (value & 0x7F) << shift
            if value < 0x80:
                self._pos = start + i + 1
                return result
            shift += 7
        raise CorruptCaptureFile(self.path, start, f"{what} length varint longer than 10 bytes")


def iter_records(path: Path, *, fs: FileSystem | None = None) -> Iterator[tuple[int, SensorRecord]]:
    """Convenience: every ``(offset, record)`` of a capture file."""
    with CaptureFileReader(path, fs=fs) as reader:
        yield from reader.records()


@final
@dataclass(frozen=True, slots=True)
class Recovery:
    """What ``recover_prog`` did with a ``.prog`` file.

    ``path`` is the finished ``.capture`` (None when the file held no record and
    was removed); ``dropped_bytes`` is the torn or corrupt tail cut off, and
    ``reason`` says why it was cut.
    """

    path: Path | None
    records: int
    kept_bytes: int
    dropped_bytes: int
    reason: str = ""
    entry_error: str = ""
    """Why the directory fsync after the rename (or removal) kept failing, if it did:
    the change is made, but a power cut may undo it until the directory is fsynced
    again (the writer does, with its next file there; or the next start recovers the
    ``.prog`` again)."""


def recover_prog(path: Path, *, fs: FileSystem | None = None) -> Recovery:
    """Finishes a ``.prog`` left by a crash: keep every complete record, cut the rest.

    The file is truncated to the end of its last record that decodes, fsynced,
    and renamed to ``.capture``; a file with no complete record (empty, or a torn
    header) is removed.

    Raises:
        CorruptCaptureFile: the header is complete but unreadable; the caller
            should move the file aside (``failed/``) rather than lose it.
    """
    fs = fs if fs is not None else OsFileSystem()
    size = fs.size(path)
    try:
        reader = CaptureFileReader(path, fs=fs)
    except TruncatedCaptureFile as exc:
        fs.unlink(path)
        return Recovery(None, 0, 0, size, exc.reason, _fsync_dir_retrying(fs, path.parent))
    records = 0
    reason = ""
    with reader:
        try:
            for _ in reader.records():
                records += 1
        except CaptureFileError as exc:
            reason = exc.reason
        good = reader.good_offset
    if records == 0:
        fs.unlink(path)
        error = _fsync_dir_retrying(fs, path.parent)
        return Recovery(None, 0, 0, size, reason or "no records", error)
    if good < size:
        fs.truncate(path, good)
    target = _free_capture_name(fs, path)
    fs.rename(path, target)
    error = _fsync_dir_retrying(fs, target.parent)
    return Recovery(target, records, good, size - good, reason, error)


_DIR_FSYNC_ATTEMPTS = 3


def _fsync_dir_retrying(fs: FileSystem, directory: Path) -> str:
    """Fsyncs ``directory`` after an entry change, a few times if it fails; returns the
    last error ("" once it succeeds). A failed directory fsync loses no data: the
    change it was to make durable is already made, so recovery goes on."""
    error = ""
    for _ in range(_DIR_FSYNC_ATTEMPTS):
        try:
            fs.fsync_dir(directory)
        except OSError as exc:
            error = f"{directory}: {exc}"
            continue
        return ""
    return error


def _free_capture_name(fs: FileSystem, prog: Path) -> Path:
    target = prog.with_suffix(CAPTURE_EXT)
    n = 1
    while fs.exists(target):
        target = prog.with_name(f"{prog.stem}-{n}{CAPTURE_EXT}")
        n += 1
    return target
