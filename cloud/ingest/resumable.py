"""Ferry's resumable, exactly-once upload protocol (``ferry.sync.v1``), transport-free.

An upload is keyed by its file's identity (part, path, size, SHA-256), so a
robot that restarts opens the same upload and learns its committed offset.
Chunks are compare-and-set on that offset (a chunk at any other offset changes
nothing, as in tus and GCS resumable uploads) and carry a CRC-32. Finish checks
the whole-file SHA-256 and materializes the readings in one transaction;
repeating it returns the first result. The protocol is documented in
``docs/resumable-upload.md``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from actors import checksum
from cloud.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from cloud.ingest.materialize import materialize, parse_upload_metadata
from cloud.ingest.small import SmallFileIngest
from cloud.model import UploadKind, UploadRecord, UploadStatus

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from cloud.ingest.ids import IdSource
    from cloud.ingest.small import SmallFileIn, SmallResult
    from cloud.model import Principal, UploadIdentity
    from cloud.store.port import Store

_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ResumableLimits:
    """Server-side bounds (``ferry cloud serve`` flags)."""

    max_chunk_bytes: int = 4 << 20
    max_upload_bytes: int = 16 << 30
    max_path_chars: int = 4096


def file_sha256(path: Path) -> bytes:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.digest()


@final
class ResumableIngest:
    """Open, write and finish resumable uploads against a store."""

    def __init__(
        self, store: Store, ids: IdSource, spool_dir: Path, limits: ResumableLimits | None = None
    ) -> None:
        self._store = store
        self._ids = ids
        self._spool_dir = spool_dir
        self.limits = limits or ResumableLimits()
        self._small = SmallFileIngest(store, ids, self._check_identity, self.limits.max_chunk_bytes)

    def upload_files(self, who: Principal, files: Sequence[SmallFileIn]) -> list[SmallResult]:
        """Small files, whole, in one commit (``cloud/ingest/small.py``).

        Raises:
            InvalidArgument: too many files or bytes in one call (nothing stored).
        """
        return self._small.upload(who, files)

    def open(
        self, who: Principal, identity: UploadIdentity, kind: int, metadata: bytes
    ) -> UploadRecord:
        """Finds or creates the upload of a file identity.

        Raises:
            InvalidArgument: an identity field is missing or out of range, the
                kind is unknown, or the metadata is malformed or names another part.
            PermissionDenied: the part is outside the caller's scope.
        """
        self._check_identity(identity)
        if kind not in (UploadKind.CAPTURE_FILE, UploadKind.ARBITRARY_FILE):
            raise InvalidArgument(f"kind: must be CAPTURE_FILE or ARBITRARY_FILE, got {kind}")
        md = parse_upload_metadata(metadata, "open")
        if md.part_id and md.part_id != identity.part_id:
            raise InvalidArgument(
                f"upload_metadata.part_id {md.part_id!r} differs from identity.part_id "
                f"{identity.part_id!r}"
            )
        part = self._store.resolve_part(who, identity.part_id)
        return self._store.open_upload(
            part, identity, UploadKind(kind), metadata, new_upload_id=self._ids.new_id()
        )

    def _check_identity(self, identity: UploadIdentity) -> None:
        if not identity.part_id:
            raise InvalidArgument("identity.part_id is required")
        if not identity.path:
            raise InvalidArgument("identity.path is required")
        if len(identity.path) > self.limits.max_path_chars:
            raise InvalidArgument(
                f"identity.path: longer than {self.limits.max_path_chars} characters"
            )
        if len(identity.sha256) != 32:
            raise InvalidArgument(
                f"identity.sha256: must be 32 bytes (SHA-256), got {len(identity.sha256)}"
            )
        if identity.size > self.limits.max_upload_bytes:
            raise InvalidArgument(
                f"identity.size: {identity.size} bytes exceeds the server's limit of "
                f"{self.limits.max_upload_bytes}"
            )

    def _upload(self, who: Principal, upload_id: str) -> UploadRecord:
        if not upload_id:
            raise InvalidArgument("upload_id is required")
        upload = self._store.get_upload(who.org_id, upload_id)
        if who.part_id is not None and upload.identity.part_id != who.part_id:
            raise PermissionDenied(
                f"upload {upload_id} belongs to part {upload.identity.part_id!r}, "
                f"outside this key's part {who.part_id!r}"
            )
        return upload

    def write(
        self, who: Principal, upload_id: str, offset: int, data: bytes, crc32: int
    ) -> tuple[int, bool]:
        """Appends a chunk if ``offset`` is the committed offset.

        Returns:
            ``(committed_offset, accepted)``; a chunk at another offset, or to a
            finished upload, is not accepted and changes nothing.

        Raises:
            InvalidArgument: the chunk is empty, too large, fails its CRC-32, or
                would grow the file past its declared size.
            NotFound: no such upload in the caller's organization.
        """
        if not upload_id:
            raise InvalidArgument("upload_id is required")
        if len(data) > self.limits.max_chunk_bytes:
            raise InvalidArgument(
                f"upload {upload_id} offset {offset}: chunk of {len(data)} bytes exceeds "
                f"max_chunk_bytes {self.limits.max_chunk_bytes}"
            )
        if not data:
            raise InvalidArgument(f"upload {upload_id} offset {offset}: chunk is empty")
        actual = checksum.crc32(data)
        if actual != crc32:
            raise InvalidArgument(
                f"upload {upload_id} offset {offset}: chunk crc32 {crc32:#010x} does not "
                f"match its data ({actual:#010x})"
            )
        upload = self._upload(who, upload_id)
        if upload.status == UploadStatus.FINISHED or offset != upload.committed_offset:
            return upload.committed_offset, False
        committed = self._store.write_chunk(who.org_id, upload_id, offset, data)
        return committed, committed == offset + len(data)

    def finish(self, who: Principal, upload_id: str, sha256: bytes) -> UploadRecord:
        """Verifies the whole file and materializes it exactly once; idempotent.

        Raises:
            InvalidArgument: ``sha256`` differs from the identity's, the stored
                bytes do not hash to it, or the content is not what the kind says.
            FailedPrecondition: not all bytes have been committed yet.
            NotFound: no such upload in the caller's organization.
        """
        upload = self._upload(who, upload_id)
        if sha256 != upload.identity.sha256:
            raise InvalidArgument(
                f"upload {upload_id}: finish sha256 {sha256.hex()} differs from the "
                f"identity's {upload.identity.sha256.hex()}"
            )
        if upload.status == UploadStatus.FINISHED:
            return upload
        if upload.committed_offset != upload.identity.size:
            raise FailedPrecondition(
                f"upload {upload_id}: {upload.committed_offset} of {upload.identity.size} "
                "bytes committed; write the rest before finishing"
            )
        try:
            staged = self._store.staged_path(upload.org_id, upload_id)
            digest = self._store.staged_sha256(upload_id, upload.identity.size)
            if digest is None:  # not hashed as it arrived (a restart since): read it
                digest = file_sha256(staged)
            if digest != upload.identity.sha256:
                raise InvalidArgument(
                    f"upload {upload_id} ({upload.identity.path}): the committed bytes do not "
                    "hash to the identity's sha256; the file changed while it was uploaded"
                )
            part = self._store.resolve_part(who, upload.identity.part_id)
            return materialize(self._store, upload, part, self._spool_dir, staged)
        except (FailedPrecondition, FileNotFoundError):
            # A concurrent finish won the race and removed the staging file: its
            # result is ours (finish is idempotent).
            again = self._store.get_upload(who.org_id, upload_id)
            if again.status == UploadStatus.FINISHED:
                return again
            raise
