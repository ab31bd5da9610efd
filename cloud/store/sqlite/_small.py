"""Many small uploads in one transaction: the store side of ``UploadFiles``.

A backlog of small capture files cost one upload row, one staging file and
about five fsyncs each through OpenUpload, WriteChunk and FinishUpload. Here a
whole batch of verified, parsed files becomes rows in one ``BEGIN IMMEDIATE``
transaction, so one commit (one fsync) covers them all. No staging file is
written: the bytes were verified against the identity's SHA-256 in memory,
and the readings are the durable copy.

Exactly once, as for resumable uploads: a file's identity finds its upload row.
A FINISHED upload is returned as stored and nothing is inserted. An OPEN one (a
resumable upload a robot began earlier) is finished here, and its staging file
is deleted after the commit. A missing one is created FINISHED, in one statement.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from cloud.model import UploadRecord, UploadStatus
from cloud.reading_json import compact as _compact
from cloud.store.sqlite._readings import (
    _context_id,
    _encoded,
    _insert_binary,
    _insert_tabular,
)
from cloud.store.sqlite._uploads import (
    _SAFE_ID,
    _check_identity,
    _find_upload,
    _mark_finished,
    _unlink,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from cloud.model import CaptureContext, PartInfo, SmallUpload
    from cloud.store.sqlite._blobs import BlobDir
    from cloud.store.sqlite._db import Database
    from cloud.store.sqlite._running_hash import RunningHashes


class SmallUploadsMixin:
    """``commit_small_uploads`` for ``SqliteStore``."""

    _db: Database
    _blobs: BlobDir
    _staging: Path
    _wall_ns: Callable[[], int]
    _running: RunningHashes

    def commit_small_uploads(
        self,
        items: Sequence[SmallUpload],
        file_id_for: Callable[[str], str],
        binary_id_for: Callable[[PartInfo, str, int], str],
    ) -> list[UploadRecord]:
        """Stores each item's readings or binary items exactly once, all in one transaction.

        Returns each item's upload record (FINISHED), in order; an item whose
        upload was already finished is returned as stored, with nothing
        inserted. ``file_id_for`` names a new upload's file id from its id, and
        ``binary_id_for`` its binary items' ids (part, upload id, index).

        Raises:
            InvalidArgument: an identity is malformed or names another part, or
                a record is not JSON-like (nothing is stored).
            FailedPrecondition: a binary item's blob is not stored.
            ValueError: a ``new_upload_id`` is not a plain file name.
        """
        for item in items:
            _check_identity(item.part, item.identity)
            if not _SAFE_ID.fullmatch(item.new_upload_id):
                raise ValueError(f"upload id {item.new_upload_id!r} is not a safe file name")
        # Encoded before the write lock is taken (every chunk commit needs it).
        encoded = [list(_encoded(i.records)) for i in items]
        out: list[UploadRecord] = []
        staged: list[str] = []
        contexts: dict[tuple[PartInfo, CaptureContext], int] = {}  # a batch's files share few
        with self._db.write() as conn:
            synced = self._wall_ns()
            for item, rows in zip(items, encoded, strict=True):
                ident, part = item.identity, item.part
                key = (part.org_id, ident.part_id, ident.path, ident.size, ident.sha256)
                found = _find_upload(conn, key)
                if found is not None and found.status is UploadStatus.FINISHED:
                    out.append(found)
                    continue
                upload_id = item.new_upload_id if found is None else found.upload_id
                file_id = file_id_for(upload_id)
                context_id = None
                if rows or item.binary:
                    context_id = contexts.get((part, item.ctx))
                    if context_id is None:
                        context_id = contexts[part, item.ctx] = _context_id(conn, part, item.ctx)
                count = _insert_tabular(conn, part, item.ctx, rows, synced, file_id, context_id)
                ids = tuple(binary_id_for(part, upload_id, i) for i in range(len(item.binary)))
                for binary_id, binary in zip(ids, item.binary, strict=True):
                    assert context_id is not None  # looked up above for binary items
                    named = replace(binary, binary_data_id=binary_id)
                    _insert_binary(
                        conn, self._blobs, part, item.ctx, context_id, named, synced, file_id
                    )
                count += len(ids)
                if found is None:
                    conn.execute(
                        "INSERT INTO uploads (upload_id, org_id, part_id, path, size, sha256, "
                        "kind, metadata, committed_offset, status, created_ns, finished_ns, "
                        "file_id, binary_data_ids, records) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            upload_id,
                            *key,
                            int(item.kind),
                            item.metadata,
                            ident.size,
                            int(UploadStatus.FINISHED),
                            synced,
                            synced,
                            file_id,
                            _compact(list(ids)),
                            count,
                        ),
                    )
                    record = UploadRecord(
                        upload_id=upload_id,
                        org_id=part.org_id,
                        identity=ident,
                        kind=item.kind,
                        metadata=item.metadata,
                        committed_offset=ident.size,
                        status=UploadStatus.FINISHED,
                        created_ns=synced,
                        file_id=file_id,
                        binary_data_ids=ids,
                        records=count,
                    )
                else:
                    _mark_finished(conn, upload_id, ident.size, file_id, ids, count, synced)
                    staged.append(upload_id)
                    record = replace(
                        found,
                        committed_offset=ident.size,
                        status=UploadStatus.FINISHED,
                        file_id=file_id,
                        binary_data_ids=ids,
                        records=count,
                    )
                out.append(record)
        for upload_id in staged:  # a resumable upload finished here: its bytes are not needed
            _unlink(self._staging / upload_id)
            self._running.forget(upload_id)
        return out
