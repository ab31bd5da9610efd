"""The write side of ``SqliteStore``: keys, parts, blobs and readings (uploads: ``_uploads``).

Every mutating method is durable when it returns: database changes commit in
one ``BEGIN IMMEDIATE`` transaction (``synchronous=FULL``), file bytes are
fsynced before the transaction that records them commits. The database is
the source of truth; files may hold *more* than it records after a crash (a
staging file's bytes past the committed offset, an unreferenced blob), never
less, and the extra is trimmed or swept.

Readings are encoded and inserted by ``_readings`` (compact JSON, non-finite
floats as strings).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import TYPE_CHECKING

from actors.adapters.os_fs import OsFileSystem
from actors.durable_dirs import ensure_dir
from cloud.errors import InvalidArgument, PermissionDenied
from cloud.model import (
    ApiKeyRecord,
    BlobRef,
    PartInfo,
    UploadStatus,
)
from cloud.store.sqlite._readings import (
    _INSERT_TABULAR,
    _context_id,
    _encode_record,
    _insert_binary,
)
from cloud.store.sqlite._running_hash import RunningHashes
from cloud.store.sqlite._uploads import _LOCK_STRIPES, _bytes, _unlink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from cloud.model import BinaryRecord, CaptureContext, Principal, TabularRecord
    from cloud.store.sqlite._blobs import BlobDir
    from cloud.store.sqlite._db import Database

_PART_CACHE_LIMIT = 4096
"""Parts remembered (``IngestMixin._parts``); past it the memory starts over."""


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
    _running: RunningHashes
    _parts: dict[str, PartInfo]
    """Parts read or claimed so far, by id: a part's row never changes once written
    (it is only ever inserted, below), so every upload call need not read it again."""

    def _open_ingest(self, staging: Path, *, sweep: bool = True) -> None:
        """Prepares the staging directory and, with ``sweep``, drops what a crash left behind.

        Call it at open, before any other thread uses the store: the sweep
        removes blob temp files, blobs no row or open upload references, and
        staging files of finished or unknown uploads. Only the server sweeps:
        a command-line tool opening the store beside a running server must not,
        or it would delete the server's uncommitted blobs and staging files.
        """
        ensure_dir(OsFileSystem(), staging)  # acknowledged chunks live in it
        self._staging = staging
        self._upload_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        self._running = RunningHashes()
        self._parts = {}
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
        part = self._parts.get(part_id)
        if part is None:
            part = self._read_or_claim_part(principal, part_id)
            if len(self._parts) >= _PART_CACHE_LIMIT:
                self._parts.clear()
            self._parts[part_id] = part
        if part.org_id != principal.org_id:
            raise PermissionDenied(f"part {part_id!r} belongs to another organization")
        if part.location_id != principal.location_id:
            raise PermissionDenied(
                f"part {part_id!r} belongs to location {part.location_id!r}, "
                f"not to the key's location {principal.location_id!r}"
            )
        return part

    def _read_or_claim_part(self, principal: Principal, part_id: str) -> PartInfo:
        """The part's row, inserted for the caller's organization and location if missing."""
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
        return PartInfo(*(str(value) for value in row))

    # -- blobs -------------------------------------------------------------------

    def put_blob(self, data: bytes | memoryview) -> BlobRef:
        """Stores bytes content-addressed (temp file, fsync, rename, fsync dir); idempotent."""
        return self._blobs.put(data)

    def put_blobs(self, datas: Sequence[bytes | memoryview]) -> list[BlobRef]:
        """``put_blob`` for many at once: each step over all of them, the fsyncs together."""
        return self._blobs.put_many(datas)

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
            _insert_binary(
                conn, self._blobs, part, ctx, context_id, record, self._wall_ns(), file_id
            )

    # -- helpers -----------------------------------------------------------------

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
