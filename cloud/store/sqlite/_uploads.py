"""Resumable uploads in the embedded store: open, stage chunks, finish, expire.

Resumable uploads stage their bytes in ``<data_dir>/staging/<upload_id>``.
``write_chunk`` is a compare-and-set append: a chunk is accepted only at the
committed offset. Chunks of one upload are serialized by a striped per-upload
lock, not the database's write lock, so one upload's fsync does not stall
every other writer; the offset update is still a conditional ``UPDATE``.
As everywhere in the store, file bytes are fsynced before the transaction
that records them commits.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from cloud.errors import FailedPrecondition, InvalidArgument, NotFound
from cloud.model import BlobRef, UploadIdentity, UploadKind, UploadRecord, UploadStatus
from cloud.reading_json import compact as _compact
from cloud.store.sqlite._blobs import copy_durably, fsync_dir
from cloud.store.sqlite._readings import (
    _context_id,
    _encoded,
    _insert_binary,
    _insert_tabular,
    _int,
)

if TYPE_CHECKING:
    import sqlite3
    import threading
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from cloud.model import (
        BinaryRecord,
        CaptureContext,
        PartInfo,
        TabularJsonRows,
        TabularRecord,
    )
    from cloud.store.sqlite._blobs import BlobDir
    from cloud.store.sqlite._db import Database
    from cloud.store.sqlite._running_hash import RunningHashes

_LOCK_STRIPES = 64
#: How much of an upload's end stays in the page cache once durable (``_drop_behind``).
CACHED_TAIL_BYTES = 8 << 20
# Upload ids name staging files: only plain file names (server-generated ids pass).
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

_UPLOAD_COLUMNS = (
    "upload_id, org_id, part_id, path, size, sha256, kind, metadata, committed_offset, "
    "status, created_ns, file_id, binary_data_ids, records"
)


class UploadsMixin:
    """The resumable-upload methods of ``Store``, for ``SqliteStore``.

    ``IngestMixin._open_ingest`` sets ``_staging``, ``_upload_locks`` and ``_running``.
    """

    _db: Database
    _blobs: BlobDir
    _wall_ns: Callable[[], int]
    _staging: Path
    _upload_locks: tuple[threading.Lock, ...]
    _running: RunningHashes

    def open_upload(
        self,
        part: PartInfo,
        identity: UploadIdentity,
        kind: UploadKind,
        metadata: bytes,
        *,
        new_upload_id: str,
    ) -> UploadRecord:
        """Finds the upload for ``identity`` in the part's org, or creates it.

        The same identity always maps to the same upload, also under concurrent
        calls (insert-if-absent, then read back, in one transaction); an
        existing upload is returned as stored, whatever ``kind`` and
        ``metadata`` this call passes.

        Raises:
            InvalidArgument: the identity is malformed or names another part.
            ValueError: ``new_upload_id`` is not a plain file name, or already
                names another upload (a server bug, not a bad request).
        """
        _check_identity(part, identity)
        if not _SAFE_ID.fullmatch(new_upload_id):
            raise ValueError(f"upload id {new_upload_id!r} is not a safe file name")
        key = (part.org_id, identity.part_id, identity.path, identity.size, identity.sha256)
        with self._db.read() as conn:
            found = _find_upload(conn, key)
        if found is not None:
            return found
        with self._db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO uploads (upload_id, org_id, part_id, path, size, sha256, "
                "kind, metadata, status, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_upload_id,
                    *key,
                    int(kind),
                    bytes(metadata),
                    int(UploadStatus.OPEN),
                    self._wall_ns(),
                ),
            )
            found = _find_upload(conn, key)
        if found is None:
            raise ValueError(f"upload id {new_upload_id!r} already names another upload")
        return found

    def get_upload(self, org_id: str, upload_id: str) -> UploadRecord:
        """The upload (``NotFound`` if it does not exist in ``org_id``)."""
        with self._db.read() as conn:
            return _load_upload(conn, org_id, upload_id)

    def write_chunk(self, org_id: str, upload_id: str, offset: int, data: bytes) -> int:
        """Compare-and-set append: durable when it returns; returns the committed offset.

        If ``offset`` differs from the committed offset, ``data`` is empty, or
        the upload is finished, nothing changes. Otherwise the staging file is
        first cut back to the committed offset (a crash may have left bytes of
        a chunk whose offset update never committed), the chunk is written and
        fsynced, and then the new offset commits.

        Raises:
            NotFound: no such upload in ``org_id``.
            InvalidArgument: the chunk would end past the file's size.
        """
        with self._upload_lock(upload_id):
            with self._db.read() as conn:
                upload = _load_upload(conn, org_id, upload_id)
            committed = upload.committed_offset
            if upload.status is UploadStatus.FINISHED or offset != committed or not data:
                return committed
            end = offset + len(data)
            if end > upload.identity.size:
                raise InvalidArgument(
                    f"upload {upload_id}: a chunk of {len(data)} bytes at offset {offset} "
                    f"would end at {end}, past the file's size {upload.identity.size}"
                )
            self._stage(upload_id, committed, data)
            with self._db.write() as conn:
                cursor = conn.execute(
                    "UPDATE uploads SET committed_offset = ?, touched_ns = ? WHERE upload_id = ? "
                    "AND org_id = ? AND committed_offset = ? AND status = ?",
                    (end, self._wall_ns(), upload_id, org_id, committed, int(UploadStatus.OPEN)),
                )
                if cursor.rowcount != 1:
                    # Finished meanwhile (only finish can race us: we hold the upload's lock).
                    return _load_upload(conn, org_id, upload_id).committed_offset
            self._running.committed(upload_id, committed, data)
            return end

    def staged_sha256(self, upload_id: str, size: int) -> bytes | None:
        """The SHA-256 of the upload's first ``size`` committed bytes, if this process hashed
        them all as they committed; None means: read the staging file."""
        with self._upload_lock(upload_id):
            return self._running.digest(upload_id, size)

    def staged_path(self, org_id: str, upload_id: str) -> Path:
        """The staging file, cut to exactly ``committed_offset`` bytes.

        Creates an empty file for an upload with no bytes yet, and restores a
        complete upload's file from its blob if ``adopt_blob`` moved it away
        before a finish that did not commit.

        Raises:
            NotFound: no such upload in ``org_id``.
            FailedPrecondition: the upload is finished (its staging file is gone).
            OSError: the staging file lost committed bytes (a storage fault).
        """
        with self._upload_lock(upload_id):
            upload = self.get_upload(org_id, upload_id)
            if upload.status is UploadStatus.FINISHED:
                raise FailedPrecondition(f"upload {upload_id} is already finished")
            path = self._staging / upload_id
            self._restore_staged(upload, path)
            return path

    def finish_upload(
        self,
        org_id: str,
        upload_id: str,
        part: PartInfo,
        ctx: CaptureContext,
        *,
        file_id: str,
        tabular: Iterable[TabularRecord] | TabularJsonRows = (),
        binary: Sequence[BinaryRecord] = (),
    ) -> UploadRecord:
        """Materializes an upload's readings exactly once, atomically.

        In one transaction: inserts ``tabular`` (streamed in batches, so it may
        be a generator parsing the staging file) and ``binary`` rows, and marks
        the upload FINISHED with ``file_id``, the binary ids and the record
        count (tabular plus binary). After the commit the staging file is
        deleted. If the upload is already FINISHED, inserts nothing and returns
        the stored record (``tabular`` is not consumed).

        Raises:
            NotFound: no such upload in ``org_id``.
            FailedPrecondition: not all of the upload's bytes are committed, or
                a binary record's blob is not stored.
            InvalidArgument: ``part`` is not the upload's part, a record is not
                JSON-like, or a binary data id exists (nothing is stored).
        """
        encoded = _encoded(tabular)
        with self._db.write() as conn:
            upload = _load_upload(conn, org_id, upload_id)
            if upload.status is UploadStatus.FINISHED:
                return upload
            _check_finishable(upload, part)
            synced = self._wall_ns()
            count = _insert_tabular(conn, part, ctx, encoded, synced, file_id)
            if binary:
                context_id = _context_id(conn, part, ctx)
                for record in binary:
                    _insert_binary(
                        conn, self._blobs, part, ctx, context_id, record, synced, file_id
                    )
            ids = tuple(record.binary_data_id for record in binary)
            _mark_finished(
                conn, upload_id, upload.identity.size, file_id, ids, count + len(ids), synced
            )
        _unlink(self._staging / upload_id)
        self._running.forget(upload_id)
        return replace(
            upload,
            status=UploadStatus.FINISHED,
            file_id=file_id,
            binary_data_ids=ids,
            records=count + len(ids),
        )

    def expire_idle_uploads(self, idle_ns: int) -> list[str]:
        """Deletes the open uploads no chunk has reached for ``idle_ns``, with their bytes.

        An upload is idle since its last committed chunk, or since it was opened
        if none came. A robot that comes back later loses nothing: its next call
        on the expired upload gets NOT_FOUND (a transient error), and OpenUpload
        of the same file then starts a new upload at offset 0. Finished uploads
        are never touched (they are the exactly-once record). Each upload is
        deleted under its own lock, so a chunk being written wins the race or
        finds the upload gone; a finish that commits first keeps it.

        Returns:
            The ids of the expired uploads.
        """
        cutoff = self._wall_ns() - idle_ns
        idle = (
            "status = ? AND max(created_ns, touched_ns) < ?",
            (int(UploadStatus.OPEN), cutoff),
        )
        with self._db.read() as conn:
            ids = [
                str(row[0])
                for row in conn.execute(f"SELECT upload_id FROM uploads WHERE {idle[0]}", idle[1])
            ]
        expired: list[str] = []
        for upload_id in ids:
            with self._upload_lock(upload_id):
                with self._db.write() as conn:
                    gone = conn.execute(
                        f"DELETE FROM uploads WHERE upload_id = ? AND {idle[0]}",
                        (upload_id, *idle[1]),
                    ).rowcount
                if gone:
                    _unlink(self._staging / upload_id)
                    self._running.forget(upload_id)
                    expired.append(upload_id)
        return expired

    def _upload_lock(self, upload_id: str) -> threading.Lock:
        return self._upload_locks[hash(upload_id) % _LOCK_STRIPES]

    def _stage(self, upload_id: str, committed: int, data: bytes) -> None:
        path = self._staging / upload_id
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size < committed:
                raise OSError(
                    errno.EIO,
                    f"staging file of upload {upload_id} has {size} bytes, "
                    f"fewer than the {committed} committed",
                )
            if size > committed:
                os.ftruncate(fd, committed)
            view, position = memoryview(data), committed
            while view:
                written = os.pwrite(fd, view, position)
                view, position = view[written:], position + written
            os.fsync(fd)
            _drop_behind(fd, committed, position)
        finally:
            os.close(fd)
        if committed == 0:  # the file may be new: make its directory entry durable
            fsync_dir(self._staging)

    def _restore_staged(self, upload: UploadRecord, path: Path) -> None:
        committed = upload.committed_offset
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size == committed:
            return
        if size > committed:
            with path.open("r+b") as f:
                f.truncate(committed)
                os.fsync(f.fileno())
            return
        if committed == 0:
            path.touch(mode=0o600)
            fsync_dir(path.parent)
            return
        blob = BlobRef(sha256=upload.identity.sha256.hex(), size=committed)
        if committed == upload.identity.size and self._blobs.exists(blob):
            copy_durably(self._blobs.path_for(blob.sha256), path)
            return
        raise OSError(
            errno.EIO,
            f"staging file of upload {upload.upload_id} has {max(size, 0)} bytes, "
            f"fewer than the {committed} committed",
        )


def _check_identity(part: PartInfo, identity: UploadIdentity) -> None:
    if identity.part_id != part.part_id:
        raise InvalidArgument(
            f"upload identity names part {identity.part_id!r}, not {part.part_id!r}"
        )
    if not identity.path:
        raise InvalidArgument("upload identity has an empty path")
    if identity.size < 0:
        raise InvalidArgument(f"upload identity has a negative size ({identity.size})")
    if len(identity.sha256) != 32:
        raise InvalidArgument(
            f"upload identity's sha256 has {len(identity.sha256)} bytes, expected 32"
        )


def _mark_finished(
    conn: sqlite3.Connection,
    upload_id: str,
    size: int,
    file_id: str,
    binary_data_ids: Sequence[str],
    records: int,
    synced: int,
) -> None:
    """Records an upload as FINISHED, all its bytes committed (in the caller's transaction)."""
    conn.execute(
        "UPDATE uploads SET status = ?, committed_offset = ?, file_id = ?, binary_data_ids = ?, "
        "records = ?, finished_ns = ? WHERE upload_id = ?",
        (
            int(UploadStatus.FINISHED),
            size,
            file_id,
            _compact(list(binary_data_ids)),
            records,
            synced,
            upload_id,
        ),
    )


def _check_finishable(upload: UploadRecord, part: PartInfo) -> None:
    if part.part_id != upload.identity.part_id or part.org_id != upload.org_id:
        raise InvalidArgument(
            f"upload {upload.upload_id} belongs to part {upload.identity.part_id!r}, "
            f"not {part.part_id!r}"
        )
    if upload.committed_offset != upload.identity.size:
        raise FailedPrecondition(
            f"upload {upload.upload_id} has {upload.committed_offset} of its "
            f"{upload.identity.size} bytes"
        )


def _find_upload(
    conn: sqlite3.Connection, key: tuple[str, str, str, int, bytes]
) -> UploadRecord | None:
    row = conn.execute(
        f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE org_id = ? AND part_id = ? AND path = ? "
        "AND size = ? AND sha256 = ?",
        key,
    ).fetchone()
    return None if row is None else _upload_from_row(row)


def _load_upload(conn: sqlite3.Connection, org_id: str, upload_id: str) -> UploadRecord:
    row = conn.execute(
        f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ? AND org_id = ?",
        (upload_id, org_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"upload {upload_id!r} does not exist")
    return _upload_from_row(row)


def _upload_from_row(row: tuple[object, ...]) -> UploadRecord:
    (upload_id, org_id, part_id, path, size, sha256, kind, metadata, committed) = row[:9]
    (status, created_ns, file_id, binary_data_ids, records) = row[9:]
    raw_ids = str(binary_data_ids)
    ids: list[str] = [] if raw_ids == "[]" else json.loads(raw_ids)  # "[]": every open upload
    return UploadRecord(
        upload_id=str(upload_id),
        org_id=str(org_id),
        identity=UploadIdentity(
            part_id=str(part_id), path=str(path), size=_int(size), sha256=_bytes(sha256)
        ),
        kind=UploadKind(_int(kind)),
        metadata=_bytes(metadata),
        committed_offset=_int(committed),
        status=UploadStatus(_int(status)),
        created_ns=_int(created_ns),
        file_id=str(file_id),
        binary_data_ids=tuple(ids),
        records=_int(records),
    )


def _bytes(value: object) -> bytes:
    assert isinstance(value, bytes)  # a BLOB column
    return value


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _drop_behind(fd: int, start: int, end: int) -> None:
    """Evicts the durable bytes more than ``CACHED_TAIL_BYTES`` behind ``end`` from the page cache.

    A large upload is written once and read once more, at its finish, as it is
    hashed; keeping all of it cached only crowds out the database and the
    uploads in flight, and makes each new chunk take fresh pages. Dropped after
    the fsync, the pages are clean, so this loses nothing. The tail stays cached:
    a small upload (a tabular capture file) is parsed whole at its finish.
    """
    lo, hi = max(0, start - CACHED_TAIL_BYTES), max(0, end - CACHED_TAIL_BYTES)
    if hi > lo and hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, lo, hi - lo, os.POSIX_FADV_DONTNEED)
