"""The write side of ``SqliteStore``: keys, parts, blobs, readings and uploads.

Every mutating method is durable when it returns: database changes commit in
one ``BEGIN IMMEDIATE`` transaction (``synchronous=FULL``), file bytes are
fsynced before the transaction that records them commits. The database is
the source of truth; files may hold *more* than it records after a crash (a
staging file's bytes past the committed offset, an unreferenced blob), never
less, and the extra is trimmed or swept.

Resumable uploads stage their bytes in ``<data_dir>/staging/<upload_id>``.
``write_chunk`` is a compare-and-set append: a chunk is accepted only at the
committed offset. Chunks of one upload are serialized by a striped per-upload
lock, not the database's write lock, so one upload's fsync does not stall
every other writer; the offset update is still a conditional ``UPDATE``.

Readings are encoded and inserted by ``_readings`` (compact JSON, non-finite
floats as strings).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from cloud.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from cloud.model import (
    ApiKeyRecord,
    BlobRef,
    PartInfo,
    UploadIdentity,
    UploadKind,
    UploadRecord,
    UploadStatus,
)
from cloud.reading_json import compact as _compact
from cloud.reading_json import reading_json
from cloud.store.sqlite._blobs import copy_durably, fsync_dir
from cloud.store.sqlite._readings import (
    _INSERT_TABULAR,
    _context_id,
    _encode_record,
    _encoded,
    _insert_tabular,
    _int,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from cloud.model import BinaryRecord, CaptureContext, Principal, TabularJsonRows, TabularRecord
    from cloud.store.sqlite._blobs import BlobDir
    from cloud.store.sqlite._db import Database

_LOCK_STRIPES = 64
# Upload ids name staging files: only plain file names (server-generated ids pass).
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

_UPLOAD_COLUMNS = (
    "upload_id, org_id, part_id, path, size, sha256, kind, metadata, committed_offset, "
    "status, created_ns, file_id, binary_data_ids, records"
)
_INSERT_BINARY = (
    "INSERT INTO binary (binary_data_id, org_id, context_id, sha256, size, blob_offset, "
    "time_requested, time_received, time_synced, mime_type, file_name, file_ext, dataset_ids, "
    "annotations, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class IngestMixin:
    """The ``Store`` methods that write (and their lookups), for ``SqliteStore``.

    The concrete store sets ``_db``, ``_blobs`` and ``_wall_ns``, then calls
    ``_open_ingest``.
    """

    _db: Database
    _blobs: BlobDir
    _wall_ns: Callable[[], int]
    _staging: Path
    _upload_locks: tuple[threading.Lock, ...]

    def _open_ingest(self, staging: Path, *, sweep: bool = True) -> None:
        """Prepares the staging directory and, with ``sweep``, drops what a crash left behind.

        Call it at open, before any other thread uses the store: the sweep
        removes blob temp files, blobs no row or open upload references, and
        staging files of finished or unknown uploads. Only the server sweeps:
        a command-line tool opening the store beside a running server must not,
        or it would delete the server's uncommitted blobs and staging files.
        """
        staging.mkdir(mode=0o700, exist_ok=True)
        self._staging = staging
        self._upload_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        if sweep:
            self._sweep()

    # -- keys and tokens ---------------------------------------------------------

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Stores a new API key.

        Raises:
            InvalidArgument: a key with this id exists.
        """
        try:
            with self._db.write() as conn:
                conn.execute(
                    "INSERT INTO api_keys (key_id, org_id, location_id, part_id, secret_hash, "
                    "salt, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.org_id,
                        record.location_id,
                        record.part_id,
                        record.secret_hash,
                        record.salt,
                        record.created_ns,
                    ),
                )
        except sqlite3.IntegrityError:
            raise InvalidArgument(f"API key {record.key_id!r} already exists") from None

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The stored key, or ``None``."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT key_id, org_id, location_id, part_id, secret_hash, salt, created_ns "
                "FROM api_keys WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        if row is None:
            return None
        return ApiKeyRecord(
            key_id=str(row[0]),
            org_id=str(row[1]),
            location_id=str(row[2]),
            part_id=None if row[3] is None else str(row[3]),
            secret_hash=bytes(row[4]),
            salt=bytes(row[5]),
            created_ns=int(row[6]),
        )

    def token_secret(self) -> bytes:
        """The 32-byte secret that signs bearer tokens; created once, then stable.

        Concurrent first calls agree: the secret is inserted only if absent and
        then read back in the same transaction.
        """
        query = "SELECT value FROM meta WHERE name = 'token_secret'"
        with self._db.read() as conn:
            row = conn.execute(query).fetchone()
        if row is None:
            with self._db.write() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('token_secret', ?)",
                    (os.urandom(32),),
                )
                row = conn.execute(query).fetchone()
        return bytes(row[0])

    # -- parts -------------------------------------------------------------------

    def resolve_part(self, principal: Principal, part_id: str) -> PartInfo:
        """The part a write names, claimed for the caller's org/location on first use.

        A new part is named after its id (``part_name = part_id``) and has no robot.

        Raises:
            InvalidArgument: ``part_id`` is empty.
            PermissionDenied: the part belongs to another organization or location,
                or the key is scoped to a different part.
        """
        if not part_id:
            raise InvalidArgument("part_id is empty: every write must name its robot part")
        if principal.part_id is not None and principal.part_id != part_id:
            raise PermissionDenied(
                f"API key {principal.key_id!r} is scoped to part {principal.part_id!r}, "
                f"not {part_id!r}"
            )
        query = (
            "SELECT part_id, org_id, location_id, part_name, robot_id, robot_name "
            "FROM parts WHERE part_id = ?"
        )
        with self._db.read() as conn:
            row = conn.execute(query, (part_id,)).fetchone()
        if row is None:
            with self._db.write() as conn:
                # A part whose config the cloud holds (cloud/fleet) belongs to that
                # config's organization before its robot ever connects.
                owner = conn.execute(
                    "SELECT org_id FROM config_parts WHERE part_id = ? LIMIT 1", (part_id,)
                ).fetchone()
                if owner is not None and owner[0] != principal.org_id:
                    raise PermissionDenied(f"part {part_id!r} belongs to another organization")
                conn.execute(
                    "INSERT OR IGNORE INTO parts (part_id, org_id, location_id, part_name) "
                    "VALUES (?, ?, ?, ?)",
                    (part_id, principal.org_id, principal.location_id, part_id),
                )
                row = conn.execute(query, (part_id,)).fetchone()
        part = PartInfo(*(str(value) for value in row))
        if part.org_id != principal.org_id:
            raise PermissionDenied(f"part {part_id!r} belongs to another organization")
        if part.location_id != principal.location_id:
            raise PermissionDenied(
                f"part {part_id!r} belongs to location {part.location_id!r}, "
                f"not to the key's location {principal.location_id!r}"
            )
        return part

    # -- blobs -------------------------------------------------------------------

    def put_blob(self, data: bytes | memoryview) -> BlobRef:
        """Stores bytes content-addressed (temp file, fsync, rename, fsync dir); idempotent."""
        return self._blobs.put(data)

    def adopt_blob(self, path: Path, sha256_hex: str, size: int) -> BlobRef:
        """Moves a verified file (e.g. a finished staging file) into the blob store.

        Adopting an upload's staging file before ``finish_upload`` commits is
        safe: ``staged_path`` restores the staging file from the blob if the
        finish fails and is retried.
        """
        return self._blobs.adopt(path, sha256_hex, size)

    def open_blob(self, ref: BlobRef) -> Iterator[bytes]:
        """The blob's bytes in chunks (at most 1 MiB each); ``NotFound`` if missing."""
        return self._blobs.open(ref)

    # -- direct ingest -------------------------------------------------------------

    def commit_tabular(
        self,
        part: PartInfo,
        ctx: CaptureContext,
        records: Sequence[TabularRecord],
        *,
        file_id: str,
    ) -> None:
        """Stores readings in one transaction (all or none).

        Every record is encoded before the transaction starts, so a record
        that is not JSON-like fails the batch without taking the write lock.

        Raises:
            InvalidArgument: a record's data is not a JSON-like object (the
                message names the record index and the offending key path).
        """
        if not records:
            return
        encoded = [_encode_record(index, record) for index, record in enumerate(records)]
        with self._db.write() as conn:
            context_id = _context_id(conn, part, ctx)
            synced = self._wall_ns()
            conn.executemany(
                _INSERT_TABULAR,
                (
                    (part.org_id, context_id, requested, received, synced, data, file_id)
                    for requested, received, data in encoded
                ),
            )

    def commit_binary(
        self, part: PartInfo, ctx: CaptureContext, record: BinaryRecord, *, file_id: str
    ) -> None:
        """Stores one binary item whose blob is already stored.

        Raises:
            InvalidArgument: the binary data id exists, or the annotations are
                not JSON-like.
            FailedPrecondition: the blob is not stored (deleted since it was put).
        """
        with self._db.write() as conn:
            context_id = _context_id(conn, part, ctx)
            self._insert_binary(conn, part, ctx, context_id, record, self._wall_ns(), file_id)

    # -- resumable uploads ---------------------------------------------------------

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
                if cursor.rowcount == 1:
                    return end
                # Finished meanwhile (only finish can race us: we hold the upload's lock).
                return _load_upload(conn, org_id, upload_id).committed_offset

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
                    self._insert_binary(conn, part, ctx, context_id, record, synced, file_id)
            ids = tuple(record.binary_data_id for record in binary)
            _mark_finished(
                conn, upload_id, upload.identity.size, file_id, ids, count + len(ids), synced
            )
        _unlink(self._staging / upload_id)
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
                    expired.append(upload_id)
        return expired

    # -- helpers -----------------------------------------------------------------

    def _upload_lock(self, upload_id: str) -> threading.Lock:
        return self._upload_locks[hash(upload_id) % _LOCK_STRIPES]

    def _insert_binary(
        self,
        conn: sqlite3.Connection,
        part: PartInfo,
        ctx: CaptureContext,
        context_id: int,
        record: BinaryRecord,
        synced: int,
        file_id: str,
    ) -> None:
        # Checked inside the write transaction: blob deletion re-checks references
        # under the same lock, so a blob seen here cannot vanish under the new row.
        if not self._blobs.exists(record.blob):
            raise FailedPrecondition(
                f"binary {record.binary_data_id}: blob {record.blob.sha256} "
                f"({record.blob.size} bytes at offset {record.blob.offset}) is not stored; "
                "store it again"
            )
        annotations = (
            None
            if record.annotations is None
            else reading_json(record.annotations, f"binary {record.binary_data_id} annotations")
        )
        row = (
            record.binary_data_id,
            part.org_id,
            context_id,
            record.blob.sha256,
            record.blob.size,
            record.blob.offset,
            record.time_requested_ns,
            record.time_received_ns,
            synced,
            record.mime_type or ctx.mime_type,
            record.file_name,
            record.file_ext or ctx.file_extension,
            _compact(sorted(set(ctx.dataset_ids))),
            annotations,
            file_id,
        )
        try:
            conn.execute(_INSERT_BINARY, row)
        except sqlite3.IntegrityError:
            raise InvalidArgument(
                f"binary data id {record.binary_data_id!r} already exists"
            ) from None

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

    def _sweep(self) -> None:
        with self._db.read() as conn:
            open_uploads = conn.execute(
                "SELECT upload_id, sha256 FROM uploads WHERE status = ?",
                (int(UploadStatus.OPEN),),
            ).fetchall()
            open_ids = {str(row[0]) for row in open_uploads}
            # An open upload's whole file may already be adopted as a blob
            # (``adopt_blob`` before a finish that never committed): keep it.
            pending = {_bytes(row[1]).hex() for row in open_uploads}

            def referenced(sha: str) -> bool:
                row = conn.execute("SELECT 1 FROM binary WHERE sha256 = ? LIMIT 1", (sha,))
                return sha in pending or row.fetchone() is not None

            self._blobs.sweep(referenced)
        for entry in self._staging.iterdir():
            if entry.name not in open_ids:
                _unlink(entry)


# -- uploads -----------------------------------------------------------------------


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
    ids: list[str] = json.loads(str(binary_data_ids))
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
