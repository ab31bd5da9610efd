"""The ``Store`` port: everything the cloud's logic needs from durable storage.

Synchronous on purpose: the gRPC server runs store calls on worker threads, the
simulator runs them inline. Every mutating method is durable (committed and
fsynced) when it returns, so a handler may acknowledge right after it. Methods
raise ``cloud.errors`` classes for requests that cannot succeed and ``OSError``
/ ``sqlite3.Error`` for storage faults (mapped to INTERNAL at the edge).

Scope: query methods take the caller's ``Principal``; they see only its
organization, and only its part when the key is part-scoped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from pathlib import Path

    from cloud.model import (
        ApiKeyRecord,
        BinaryRecord,
        BinaryRow,
        BlobRef,
        CaptureContext,
        Document,
        Filter,
        Page,
        PageRequest,
        PartInfo,
        Principal,
        SmallUpload,
        TabularJsonRows,
        TabularRecord,
        TabularRow,
        UploadIdentity,
        UploadKind,
        UploadRecord,
    )


class Store(Protocol):
    """Durable storage for keys, parts, uploads, readings and blobs."""

    # -- keys and tokens ---------------------------------------------------------

    def put_api_key(self, record: ApiKeyRecord) -> None:
        """Stores a new API key (``InvalidArgument`` if the key id exists)."""
        ...

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The stored key, or ``None``."""
        ...

    def token_secret(self) -> bytes:
        """The 32-byte secret that signs bearer tokens; created once, then stable."""
        ...

    # -- parts -------------------------------------------------------------------

    def resolve_part(self, principal: Principal, part_id: str) -> PartInfo:
        """The part a write names, claimed for the caller's org/location on first use.

        Raises:
            InvalidArgument: ``part_id`` is empty.
            PermissionDenied: the part belongs to another organization or location,
                or the key is scoped to a different part.
        """
        ...

    # -- blobs -------------------------------------------------------------------

    def put_blob(self, data: bytes | memoryview) -> BlobRef:
        """Stores bytes content-addressed (temp file, fsync, rename, fsync dir); idempotent."""
        ...

    def put_blobs(self, datas: Sequence[bytes | memoryview]) -> list[BlobRef]:
        """``put_blob`` for many at once, in order; cheaper than one call each."""
        ...

    def adopt_blob(self, path: Path, sha256_hex: str, size: int) -> BlobRef:
        """Moves a verified file (e.g. a finished staging file) into the blob store."""
        ...

    def open_blob(self, ref: BlobRef) -> Iterator[bytes]:
        """The blob's bytes in chunks (at most 1 MiB each)."""
        ...

    # -- direct ingest (Viam's DataSyncService) ----------------------------------

    def commit_tabular(
        self,
        part: PartInfo,
        ctx: CaptureContext,
        records: Sequence[TabularRecord],
        *,
        file_id: str,
    ) -> None:
        """Stores readings in one transaction (all or none)."""
        ...

    def commit_binary(
        self, part: PartInfo, ctx: CaptureContext, record: BinaryRecord, *, file_id: str
    ) -> None:
        """Stores one binary item whose blob is already stored."""
        ...

    # -- resumable uploads (ferry.sync.v1) ---------------------------------------

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

        The same identity always maps to the same upload (``new_upload_id`` is used
        only when none exists), so a robot that restarts finds its committed offset.
        """
        ...

    def get_upload(self, org_id: str, upload_id: str) -> UploadRecord:
        """The upload (``NotFound`` if it does not exist in ``org_id``)."""
        ...

    def write_chunk(self, org_id: str, upload_id: str, offset: int, data: bytes) -> int:
        """Compare-and-set append: durable when it returns; returns the committed offset.

        If ``offset`` differs from the committed offset, or the upload is finished,
        nothing changes and the current committed offset is returned. A chunk that
        would grow the upload past its identity's size is ``InvalidArgument``.
        """
        ...

    def staged_path(self, org_id: str, upload_id: str) -> Path:
        """The staging file holding the committed bytes (exactly ``committed_offset`` long)."""
        ...

    def staged_sha256(self, upload_id: str, size: int) -> bytes | None:
        """The SHA-256 of the first ``size`` committed bytes, if the store hashed them as
        they committed (None: the caller hashes the staging file)."""
        ...

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

        In one transaction: inserts ``tabular`` (consumed lazily) and ``binary``
        rows, marks the upload FINISHED with ``file_id``, the binary ids and the
        record count, and drops its staging file. If the upload is already
        FINISHED, inserts nothing and returns the stored record (idempotent).
        """
        ...

    def expire_idle_uploads(self, idle_ns: int) -> list[str]:
        """Deletes open uploads with no chunk for ``idle_ns`` (and their bytes); their ids."""
        ...

    def commit_small_uploads(
        self,
        items: Sequence[SmallUpload],
        file_id_for: Callable[[str], str],
        binary_id_for: Callable[[PartInfo, str, int], str],
    ) -> list[UploadRecord]:
        """Stores whole small files exactly once, all in one transaction."""
        ...

    # -- queries -----------------------------------------------------------------

    def tabular_by_filter(self, who: Principal, flt: Filter, page: PageRequest) -> Page[TabularRow]:
        """Readings matching ``flt``, keyset-paged by (time_requested, id)."""
        ...

    def count_tabular(self, who: Principal, flt: Filter) -> int:
        """How many readings match ``flt``."""
        ...

    def latest_tabular(
        self,
        who: Principal,
        part_id: str,
        resource_name: str,
        resource_subtype: str,
        method_name: str,
    ) -> TabularRow | None:
        """The most recently captured reading of one (part, resource, method)."""
        ...

    def export_tabular(
        self,
        who: Principal,
        part_id: str,
        resource_name: str,
        resource_subtype: str,
        method_name: str,
        start_ns: int,
        end_ns: int,
    ) -> Iterator[TabularRow]:
        """Every matching reading in ascending time order, streamed (bounded memory)."""
        ...

    def binary_by_filter(self, who: Principal, flt: Filter, page: PageRequest) -> Page[BinaryRow]:
        """Binary items matching ``flt``, keyset-paged by (time_requested, id)."""
        ...

    def count_binary(self, who: Principal, flt: Filter) -> int:
        """How many binary items match ``flt``."""
        ...

    def binary_by_ids(self, who: Principal, ids: Sequence[str]) -> list[BinaryRow]:
        """The items with these ids in scope, in the order asked (unknown ids skipped)."""
        ...

    def tags_by_filter(self, who: Principal, flt: Filter) -> list[str]:
        """The distinct tags of binary and tabular data matching ``flt``, sorted."""
        ...

    def delete_tabular(self, who: Principal, older_than_ns: int, flt: Filter) -> int:
        """Deletes matching readings captured before ``older_than_ns`` (0 = all); returns count."""
        ...

    def delete_binary_by_ids(self, who: Principal, ids: Sequence[str]) -> int:
        """Deletes these items (and blobs no longer referenced); returns count."""
        ...

    def delete_binary_by_filter(self, who: Principal, flt: Filter) -> int:
        """Deletes matching items (and blobs no longer referenced); returns count."""
        ...

    def sql_query(self, who: Principal, sql: str, *, max_rows: int) -> list[Document]:
        """Runs read-only SQL over the caller's ``readings`` table (sandboxed).

        Raises:
            InvalidArgument: the SQL is not a single read-only SELECT over
                ``readings``, fails to compile, or runs out of its budget.
        """
        ...

    def iter_reading_documents(self, who: Principal, flt: Filter) -> Iterator[Document]:
        """The caller's readings as Viam-shaped documents (the MQL input), ascending.

        Document fields: ``_id``, ``organization_id``, ``location_id``,
        ``robot_name``, ``robot_id``, ``part_name``, ``part_id``,
        ``component_type``, ``component_name``, ``method_name``, ``tags`` (list),
        ``time_requested`` and ``time_received`` (``datetime``, UTC), ``data``.
        """
        ...
