"""Blocking file helpers for sync: identity, chunks, capture checks, delete, park, restore.

Every function is synchronous and does its I/O through the ``FileSystem`` port,
so the sync actor runs each one with ``await runner.run(fn, fs, ...)`` (a worker
thread in production, inline in the simulator). Domain errors are the
``actors.errors`` classes: ``TransientError`` when the file changed under us
(retry), ``PermanentError`` when it can never be uploaded (park it). Other
``OSError``s (the file vanished, EIO) propagate for the caller to classify.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO, final

from actors.codec import FAILED_DIR, WireError, decode_header
from actors.durable_dirs import ensure_dir
from actors.errors import PermanentError, TransientError
from actors.ports import FileIdentity, FileKind
from actors.recovery import move_to_failed
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.ports import DirEntry, FileSystem, SyncFile

LOGGER = logging.getLogger("ferry.sync.files")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

HASH_READ_BYTES = 1 << 20
"""Hashing reads the file in pieces of this size, so memory stays flat."""
MAX_RECORD_BYTES = 1 << 30
"""A record length above this is a corrupt prefix, not a huge reading (as the codec)."""
REASON_SUFFIX = ".reason"


# ----------------------------------------------------------------- identity and chunks


def compute_identity(fs: FileSystem, file: SyncFile, part_id: str) -> FileIdentity:
    """The upload key of ``file``: part, path relative to its root, size and SHA-256.

    Streams the file in 1 MiB reads.

    Raises:
        TransientError: the bytes read differ in number from ``file.size`` (the
            file changed since it was listed; the next walk sees its new state).

    Example::

        identity = await runner.run(compute_identity, fs, file, "part-1")
    """
    digest = hashlib.sha256()
    total = 0
    handle = fs.open_read(file.path)
    try:
        while block := handle.read(HASH_READ_BYTES):
            digest.update(block)
            total += len(block)
    finally:
        handle.close()
    if total != file.size:
        raise TransientError(
            f"file changed while hashing: listed {file.size} bytes, read {total}",
            where=str(file.path),
        )
    return FileIdentity(part_id, file.relpath, total, digest.digest())


def read_chunk(fs: FileSystem, path: Path, offset: int, length: int) -> bytes:
    """Exactly ``length`` bytes of ``path`` from ``offset``.

    Raises:
        TransientError: the file ends before ``offset + length`` (it got shorter).

    Example::

        data = await runner.run(read_chunk, fs, file.path, committed, 1 << 20)
    """
    handle = fs.open_read(path)
    try:
        handle.seek(offset)
        parts: list[bytes] = []
        got = 0
        while got < length:
            part = handle.read(length - got)
            if not part:
                raise TransientError(
                    f"file got shorter: wanted {length} bytes at offset {offset}, got {got}",
                    where=str(path),
                )
            parts.append(part)
            got += len(part)
    finally:
        handle.close()
    return parts[0] if len(parts) == 1 else b"".join(parts)


# ----------------------------------------------------------------- capture check


@final
@dataclass(frozen=True, slots=True)
class CaptureCheck:
    """What a cheap pass over a capture file found: its number of records, and whether
    its header says tabular (readings) rather than binary (images and the like)."""

    records: int
    tabular: bool = False


def inspect_capture(fs: FileSystem, path: Path) -> CaptureCheck:
    """Checks a capture file's framing and counts its records, without decoding them.

    The header is decoded (it is small, and an unreadable one is terminal, spec
    §4.6); each record's length prefix is read and its body skipped with a seek.

    Raises:
        PermanentError: the header or a record prefix is unreadable or truncated;
            the message names the file and the byte offset.

    Example::

        if (await runner.run(inspect_capture, fs, path)).records == 0: ...
    """
    size = fs.size(path)
    handle = fs.open_read(path)
    try:
        return _inspect(handle, path, size)
    finally:
        handle.close()


def inspect_capture_bytes(path: Path, data: bytes) -> CaptureCheck:
    """``inspect_capture`` of a file already read whole (a small one, for a batch).

    Each seek and one-byte read of a file costs system calls; in memory the same
    pass costs a fraction (``docs/performance.md``). ``path`` only names the file
    in errors.
    """
    return _inspect(io.BytesIO(data), path, len(data))


def _inspect(handle: BinaryIO, path: Path, size: int) -> CaptureCheck:
    pos, tabular = _check_header(handle, path, size)
    records = 0
    while (frame := _frame_length(handle, path, pos, size, "record")) is not None:
        pos = frame[0] + frame[1]
        handle.seek(pos)  # the body is not read: counting stays cheap for big binaries
        records += 1
    return CaptureCheck(records, tabular)


def _check_header(handle: BinaryIO, path: Path, size: int) -> tuple[int, bool]:
    """Reads and decodes the header; returns the offset just after it and if it is tabular."""
    frame = _frame_length(handle, path, 0, size, "header")
    if frame is None:
        raise _corrupt(path, 0, "empty file: no header")
    start, length = frame
    header = handle.read(length)
    if len(header) < length:
        raise _corrupt(path, 0, f"header declares {length} bytes, read {len(header)}")
    try:
        decoded = decode_header(header)
    except WireError as exc:
        raise _corrupt(path, 0, f"unreadable header: {exc}") from None
    return start + length, decoded.type == datasync.DataType.TABULAR_SENSOR


def _frame_length(
    handle: BinaryIO, path: Path, offset: int, size: int, what: str
) -> tuple[int, int] | None:
    """Reads the length varint at ``offset``: ``(body start, length)``, or None at EOF."""
    length = 0
    for i in range(10):
        byte = handle.read(1)
        if not byte:
            if i == 0:
                return None
            raise _corrupt(path, offset, f"file ends inside a {what} length")
        length |= (byte[0] & 0x7F) << (7 * i)
        if byte[0] < 0x80:
            break
    else:
        raise _corrupt(path, offset, f"{what} length varint longer than 10 bytes")
    body = offset + i + 1
    if length == 0 and what == "record":
        raise _corrupt(path, offset, "zero-length record (zero-filled or torn tail?)")
    if length > MAX_RECORD_BYTES:
        raise _corrupt(path, offset, f"{what} length {length} exceeds {MAX_RECORD_BYTES} bytes")
    if length > size - body:
        raise _corrupt(
            path, offset, f"{what} declares {length} bytes but only {size - body} remain"
        )
    return body, length


def _corrupt(path: Path, offset: int, reason: str) -> PermanentError:
    return PermanentError(f"offset {offset}: {reason}", where=str(path))


# ----------------------------------------------------------------- delete, park, restore


def arbitrary_file_metadata(file: SyncFile, part_id: str) -> datasync.UploadMetadata:
    """What Viam sends with an arbitrary file (spec §4.4): type FILE, its absolute path.

    The modification time becomes ``file_modify_time`` (the cloud's time of the item).
    """
    modified = _EPOCH + timedelta(microseconds=file.mtime_ns // 1000) if file.mtime_ns else None
    return datasync.UploadMetadata(
        part_id=part_id,
        type=datasync.DataType.FILE,
        file_name=str(file.path),
        file_extension=file.path.suffix,
        tags=list(file.tags),
        dataset_ids=list(file.dataset_ids),
        file_modify_time=modified,
    )


def delete_synced(fs: FileSystem, path: Path) -> None:
    """Deletes an uploaded file durably; a file (or directory) already gone counts as deleted.

    Example::

        await runner.run(delete_synced, fs, file.path)
    """
    _unlink_quietly(fs, path)
    sync_deletes(fs, path.parent)


def unlink_synced(fs: FileSystem, path: Path) -> None:
    """Deletes an uploaded file, leaving the directory fsync to the caller (batched deletes)."""
    _unlink_quietly(fs, path)


def sync_deletes(fs: FileSystem, directory: Path) -> None:
    """Makes the deletes in ``directory`` durable (a missing directory took its entries)."""
    with contextlib.suppress(FileNotFoundError):
        fs.fsync_dir(directory)


def park(fs: FileSystem, file: SyncFile, reason: str) -> Path:
    """Moves a file that can never be uploaded into ``failed/`` with a ``.reason`` note.

    Capture files go to ``<root>/failed/<relative path>``, arbitrary files to
    ``<their dir>/failed/<name>`` (spec §4.6); an existing name gets a ``-N``
    suffix. Returns the new path.

    Example::

        target = await runner.run(park, fs, file, "INVALID_ARGUMENT: bad header")
    """
    root = file.root if file.kind is FileKind.CAPTURE else file.path.parent
    return move_to_failed(root, file.path, reason, fs)


def retry_failed(fs: FileSystem, roots: Sequence[Path]) -> list[Path]:
    """Puts every parked file under ``roots`` back where it came from, for another try.

    Every ``X/failed/REL`` (any ``failed`` directory at any depth below a root)
    moves to ``X/REL``; a name already taken gets a ``-N`` suffix, nothing is
    overwritten. Its ``.reason`` sidecar is removed after the move, and a sidecar
    whose file is gone (a crash between the two) is removed too. Both
    directories are fsynced. Emptied ``failed/`` directories stay (the port has
    no ``remove_dir``). A ``failed`` directory inside a ``failed`` tree is
    restored one level per call. Symlinked directories are not followed.

    Returns:
        The restored paths, in walk order.

    Example::

        restored = await runner.run(retry_failed, fs, [capture_dir])
    """
    restored: list[Path] = []
    for root in roots:
        _find_failed(fs, root, restored)
    return restored


def _find_failed(fs: FileSystem, directory: Path, restored: list[Path]) -> None:
    for entry in _sorted_listing(fs, directory):
        if not entry.is_dir:
            continue
        path = directory / entry.name
        if entry.name == FAILED_DIR:
            _restore_tree(fs, path, directory, restored)
        else:
            _find_failed(fs, path, restored)


def _restore_tree(fs: FileSystem, source: Path, dest: Path, restored: list[Path]) -> None:
    """Moves every file below ``source`` to the same relative place below ``dest``."""
    entries = _sorted_listing(fs, source)
    names = {entry.name for entry in entries if not entry.is_dir}
    for entry in entries:
        path = source / entry.name
        if entry.is_dir:
            _restore_tree(fs, path, dest / entry.name, restored)
        elif not entry.name.endswith(REASON_SUFFIX):
            restored.append(_restore_file(fs, path, dest / entry.name))
        elif entry.name.removesuffix(REASON_SUFFIX) not in names:
            # A note whose file was already restored (a crash after the move).
            _unlink_quietly(fs, path)
            fs.fsync_dir(source)


def _restore_file(fs: FileSystem, parked: Path, target: Path) -> Path:
    ensure_dir(fs, target.parent)
    n = 1
    stem, suffix = target.stem, target.suffix
    while fs.exists(target):
        target = target.with_name(f"{stem}-{n}{suffix}")
        n += 1
    fs.rename(parked, target)
    fs.fsync_dir(target.parent)
    _unlink_quietly(fs, parked.with_name(parked.name + REASON_SUFFIX))
    fs.fsync_dir(parked.parent)
    LOGGER.info("restored %s from %s", target, parked)
    return target


def _sorted_listing(fs: FileSystem, directory: Path) -> list[DirEntry]:
    """``directory``'s entries by name; none (with a warning) if it cannot be listed."""
    try:
        entries = fs.list_dir(directory)
    except FileNotFoundError:
        return []
    except OSError as exc:
        LOGGER.warning("retry of failed files: skipped %s: %s", directory, exc)
        return []
    entries.sort(key=_name)
    return entries


def _name(entry: DirEntry) -> str:
    return entry.name


def _unlink_quietly(fs: FileSystem, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        fs.unlink(path)
