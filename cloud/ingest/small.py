"""``UploadFiles``: many small files, whole, in one call and one commit.

The resumable protocol costs three calls and about five fsyncs per file, which
is what a backlog of thousands of small files paid. A robot sends such files
whole in one ``UploadFiles`` call instead. Each file is checked here against its
identity (size, SHA-256) and parsed, in memory. The blobs of binary and
arbitrary files (each the whole file, as a resumable finish adopts the staged
file) are then stored, all together, and the good files in one store
transaction (``Store.commit_small_uploads``), exactly once per
identity, as OpenUpload + WriteChunk + FinishUpload would. A bad file gets an
error in its own result (its gRPC status name and a message naming it); it
never fails the others. A file's ``tags`` (the robot's data manager tags) join
its header's, as ``OpenUpload``'s metadata tags do.

An arbitrary file (``kind`` ARBITRARY_FILE) comes with the ``UploadMetadata``
OpenUpload would carry, and is stored as a finish stores it: one binary item,
named and dated by that metadata, whose blob is the whole file.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, final

from actors.codec import CaptureFileError, CaptureFileReader
from cloud.errors import CloudError, InvalidArgument
from cloud.ingest.binary_records import locate_binary_records
from cloud.ingest.convert import context_from_header, context_from_upload_metadata, labels
from cloud.ingest.materialize import (
    MAX_RECORD_BYTES,
    arbitrary_item,
    binary_id_for,
    binary_items,
    file_id_for,
    parse_upload_metadata,
    tabular_rows,
)
from cloud.model import BlobRef, SmallUpload, TabularJsonRows, UploadKind
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from cloud.ingest.ids import IdSource
    from cloud.model import PartInfo, Principal, UploadIdentity
    from cloud.store.port import Store

MAX_FILES = 1024
"""Files per call; more is INVALID_ARGUMENT for the whole call."""


class SmallFileIn(NamedTuple):
    """One file of an ``UploadFiles`` call: its identity, its whole bytes, the robot's tags,
    its ``UploadKind`` (0 or CAPTURE_FILE: a capture file) and its serialized
    ``UploadMetadata`` (empty: none)."""

    identity: UploadIdentity
    data: bytes
    tags: Sequence[str] = ()
    kind: int = 0
    metadata: bytes = b""


@final
@dataclass(frozen=True)
class SmallResult:
    """One file's outcome: stored (``error_code`` empty) or refused, and why."""

    upload_id: str = ""
    file_id: str = ""
    records: int = 0
    error_code: str = ""
    error: str = ""


@final
class SmallFileIngest:
    """Checks, parses and stores batches of small files (capture files and arbitrary files)."""

    def __init__(
        self,
        store: Store,
        ids: IdSource,
        check_identity: Callable[[UploadIdentity], None],
        max_batch_bytes: int,
    ) -> None:
        self._store = store
        self._ids = ids
        self._check_identity = check_identity
        self.max_batch_bytes = max_batch_bytes

    def upload(self, who: Principal, files: Sequence[SmallFileIn]) -> list[SmallResult]:
        """Stores every acceptable file exactly once; returns one result per file, in order.

        Raises:
            InvalidArgument: more than ``MAX_FILES`` files, or more than
                ``max_batch_bytes`` of data, in one call (nothing is stored).
        """
        if len(files) > MAX_FILES:
            raise InvalidArgument(f"files: {len(files)} in one call, at most {MAX_FILES}")
        total = sum(len(file.data) for file in files)
        if total > self.max_batch_bytes:
            raise InvalidArgument(
                f"files: {total} bytes in one call, at most {self.max_batch_bytes}"
            )
        results: list[SmallResult | None] = []
        ready: list[tuple[int, SmallUpload]] = []
        blobs: list[bytes] = []
        parts: dict[str, PartInfo] = {}
        for index, file in enumerate(files):
            try:
                item, blob = self._prepare(who, file, parts)
            except CloudError as exc:
                results.append(SmallResult(error_code=exc.grpc_code, error=str(exc)))
                continue
            results.append(None)
            ready.append((index, item))
            if blob:
                blobs.append(blob)
        # Binary and arbitrary files' blobs are durable before the transaction names
        # them, as a resumable finish adopts its blob first; stored together, their
        # fsyncs cost half as much as one by one.
        if blobs:
            self._store.put_blobs(blobs)
        # Nothing to store (a robot asking whether tags apply, or every file bad): no
        # transaction.
        stored = (
            self._store.commit_small_uploads(
                [item for _, item in ready], file_id_for, binary_id_for
            )
            if ready
            else []
        )
        for (index, _), record in zip(ready, stored, strict=True):
            results[index] = SmallResult(record.upload_id, record.file_id, record.records)
        return [r if r is not None else SmallResult() for r in results]

    def _prepare(
        self, who: Principal, file: SmallFileIn, parts: dict[str, PartInfo]
    ) -> tuple[SmallUpload, bytes]:
        """The file, checked and parsed, and the bytes of the blob it needs (b"": none).

        The whole file is the blob of a binary capture file or an arbitrary file,
        as a resumable finish adopts it; its hash is the identity's, checked here.
        """
        identity, data = file.identity, file.data
        where = f"file {identity.path!r}"
        self._check_identity(identity)
        if file.kind not in (0, UploadKind.CAPTURE_FILE, UploadKind.ARBITRARY_FILE):
            raise InvalidArgument(
                f"{where}: kind must be CAPTURE_FILE or ARBITRARY_FILE, got {file.kind}"
            )
        md = None  # most files have none: not even an empty message is built for them
        tags = file.tags
        if file.metadata:
            md = parse_upload_metadata(file.metadata, where)
            if md.part_id and md.part_id != identity.part_id:
                raise InvalidArgument(
                    f"{where}: upload_metadata.part_id {md.part_id!r} differs from "
                    f"identity.part_id {identity.part_id!r}"
                )
            tags = [*tags, *md.tags]
        added = labels(tags, f"{where} tags")
        if len(data) != identity.size:
            raise InvalidArgument(
                f"{where}: {len(data)} bytes sent, identity.size says {identity.size}"
            )
        if hashlib.sha256(data).digest() != identity.sha256:
            raise InvalidArgument(f"{where}: the bytes do not hash to identity.sha256")
        part = parts.get(identity.part_id)
        if part is None:
            part = parts[identity.part_id] = self._store.resolve_part(who, identity.part_id)
        if file.kind == UploadKind.ARBITRARY_FILE:
            md = md or datasync.UploadMetadata()
            md.tags = list(added)
            ctx = context_from_upload_metadata(md, where)
            blob = BlobRef(sha256=identity.sha256.hex(), size=len(data))
            item = SmallUpload(
                part,
                identity,
                ctx,
                TabularJsonRows([]),
                self._ids.new_id(),
                binary=[arbitrary_item(md, identity.path, blob, "")],
                kind=UploadKind.ARBITRARY_FILE,
                metadata=file.metadata,
            )
            return item, data
        path = Path(identity.path)  # only names the file in errors: the bytes are in data
        try:
            with CaptureFileReader(path, data=data, max_record_bytes=MAX_RECORD_BYTES) as reader:
                kind = reader.header.type
                ctx = context_from_header(reader.header, added)
                if kind == datasync.DataType.TABULAR_SENSOR:
                    records = TabularJsonRows(list(tabular_rows(reader, where)))
                    return SmallUpload(part, identity, ctx, records, self._ids.new_id()), b""
                header_end = reader.header_end
            if kind != datasync.DataType.BINARY_SENSOR:
                raise InvalidArgument(
                    f"{where}: capture file header type must be TABULAR_SENSOR or "
                    f"BINARY_SENSOR, got {kind.name}"
                )
            found = list(locate_binary_records(io.BytesIO(data), path, header_end, len(data)))
        except CaptureFileError as exc:
            raise InvalidArgument(
                f"{where}: not a valid capture file at offset {exc.offset}: {exc.reason}"
            ) from None
        # Each item is its payload's byte range of the blob (the whole file).
        binary = binary_items(found, ctx, identity.sha256.hex(), where)
        item = SmallUpload(
            part, identity, ctx, TabularJsonRows([]), self._ids.new_id(), binary=binary
        )
        return item, data
