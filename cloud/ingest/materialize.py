"""A finished upload's bytes to stored readings: parse, check, and hand to the store.

A capture file becomes tabular readings (streamed, never loaded whole) or
binary items; an arbitrary file becomes one binary item. A binary capture
file is adopted whole as one blob (a hard link of the staging file, so no byte
is copied) and each record's item is its payload's byte range in that blob.
Ids derive from the upload id, so materializing twice names the same rows —
and the store's ``finish_upload`` inserts them only once.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from actors.codec import CaptureFileError, CaptureFileReader, TabularTranscoder
from cloud.errors import InvalidArgument
from cloud.ingest.binary_records import locate_binary_records
from cloud.ingest.convert import (
    annotations_from_bytes,
    context_from_header,
    context_from_upload_metadata,
    timestamp_ns,
)
from cloud.ingest.direct import MIME_BY_ENUM
from cloud.ingest.ids import IdSource
from cloud.model import BinaryRecord, BlobRef, CaptureContext, TabularJsonRows, UploadKind
from cloud.reading_json import reading_json
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from cloud.ingest.binary_records import BinaryLocation
    from cloud.model import PartInfo, UploadRecord
    from cloud.store.port import Store

# Capture files of this size or less decode in one read; larger ones stream.
MAX_RECORD_BYTES = 256 << 20

# One per process: the reading shapes it learns serve every upload (and thread).
_ROWS = TabularTranscoder(lambda struct: reading_json(struct, "reading"))


def file_id_for(upload_id: str) -> str:
    """The file id every finish of this upload reports."""
    return IdSource.derived("file", upload_id)


def binary_id_for(part: PartInfo, upload_id: str, index: int) -> str:
    """The binary data id of an upload's ``index``-th item, the same at every finish."""
    return IdSource.binary_data_id(
        part.org_id, part.location_id, IdSource.derived("binary", upload_id, str(index))
    )


def parse_upload_metadata(raw: bytes, where: str) -> datasync.UploadMetadata:
    """The ``UploadMetadata`` an upload was opened with (empty when none was sent).

    Raises:
        InvalidArgument: the bytes are not an ``UploadMetadata``; names ``where``.
    """
    if not raw:  # a capture file opened without walker tags: nothing to parse
        return datasync.UploadMetadata()
    try:
        return datasync.UploadMetadata.parse(raw)
    except Exception as exc:  # betterproto2 raises assorted errors on bad input
        raise InvalidArgument(f"{where}: upload_metadata is not valid: {exc}") from None


def materialize(
    store: Store, upload: UploadRecord, part: PartInfo, spool_dir: Path, staged: Path
) -> UploadRecord:
    """Stores a complete, verified upload's contents exactly once.

    ``staged`` is the upload's staging file, as ``Store.staged_path`` gave it to
    the caller (who hashed it).

    Raises:
        InvalidArgument: the bytes are not what the upload's kind says (a
            corrupt or truncated capture file names the offset).
    """
    md = parse_upload_metadata(upload.metadata, f"upload {upload.upload_id}")
    file_id = file_id_for(upload.upload_id)
    if upload.kind == UploadKind.ARBITRARY_FILE:
        return _arbitrary_file(store, upload, part, md, staged, spool_dir, file_id)
    try:
        with CaptureFileReader(staged, max_record_bytes=MAX_RECORD_BYTES) as reader:
            ctx = context_from_header(reader.header, tuple(md.tags))
            kind = reader.header.type
            if kind == datasync.DataType.TABULAR_SENSOR:
                return store.finish_upload(
                    upload.org_id,
                    upload.upload_id,
                    part,
                    ctx,
                    file_id=file_id,
                    tabular=TabularJsonRows(
                        tabular_rows(reader, f"upload {upload.upload_id} ({upload.identity.path})")
                    ),
                )
            if kind == datasync.DataType.BINARY_SENSOR:
                header_end = reader.header_end
        if kind == datasync.DataType.BINARY_SENSOR:
            binary = _binary(store, staged, header_end, upload, part, ctx, spool_dir)
            return store.finish_upload(
                upload.org_id, upload.upload_id, part, ctx, file_id=file_id, binary=binary
            )
    except CaptureFileError as exc:
        raise InvalidArgument(
            f"upload {upload.upload_id} ({upload.identity.path}): not a valid capture file "
            f"at offset {exc.offset}: {exc.reason}"
        ) from None
    raise InvalidArgument(
        f"upload {upload.upload_id} ({upload.identity.path}): capture file header type must be "
        f"TABULAR_SENSOR or BINARY_SENSOR, got {kind.name}"
    )


def tabular_rows(reader: CaptureFileReader, where: str) -> Iterator[tuple[int, int, str]]:
    """A tabular capture file's readings, in order, as ``(requested, received, JSON)``
    (``TabularJsonRows``' rows); ``where`` names the file in errors.

    Raises, as the rows are taken:
        InvalidArgument: a record holds no struct (binary data in a tabular file).
        CaptureFileError: the file is corrupt or truncated (from the reader), or
            a record is not a SensorData.
    """
    for offset, found in reader.decoded(_ROWS.row):
        if found is None:
            raise InvalidArgument(
                f"{where}: record at offset {offset} of a tabular capture file has no struct"
            )
        yield found


def _binary(
    store: Store,
    staged: Path,
    header_end: int,
    upload: UploadRecord,
    part: PartInfo,
    ctx: CaptureContext,
    spool_dir: Path,
) -> list[BinaryRecord]:
    """Each record's payload becomes an item: its byte range of the adopted file."""
    where = f"upload {upload.upload_id} ({upload.identity.path})"
    with staged.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        locations = list(locate_binary_records(f, staged, header_end, size))
    container = _adopt_staged(store, upload, staged, spool_dir)
    items = binary_items(locations, ctx, container.sha256, where)
    return [
        replace(item, binary_data_id=binary_id_for(part, upload.upload_id, index))
        for index, item in enumerate(items)
    ]


def binary_items(
    locations: Sequence[BinaryLocation], ctx: CaptureContext, blob_sha256: str, where: str
) -> list[BinaryRecord]:
    """Each record's payload as an item: its byte range of the file stored whole as the
    blob ``blob_sha256``. Ids are left empty: they derive from the upload id.

    Raises:
        InvalidArgument: a record's annotations are malformed (names ``where``).
    """
    out: list[BinaryRecord] = []
    for loc in locations:
        record = loc.record
        mime = ctx.mime_type or MIME_BY_ENUM.get(datasync.MimeType(record.mime_type), "")
        out.append(
            BinaryRecord(
                binary_data_id="",
                blob=BlobRef(blob_sha256, loc.payload_size, loc.payload_offset),
                time_requested_ns=record.time_requested_ns,
                time_received_ns=record.time_received_ns,
                mime_type=mime,
                file_ext=ctx.file_extension,
                annotations=annotations_from_bytes(
                    record.annotations, f"{where} offset {loc.offset}"
                ),
            )
        )
    return out


def _adopt_staged(store: Store, upload: UploadRecord, staged: Path, spool_dir: Path) -> BlobRef:
    """The whole verified staging file as a blob, named by the upload's SHA-256."""
    # Link, not move: the staging file must survive until finish_upload commits,
    # so a crash before the commit leaves the upload finishable.
    link = spool_dir / f"adopt-{upload.upload_id}"
    link.unlink(missing_ok=True)
    os.link(staged, link)
    return store.adopt_blob(link, upload.identity.sha256.hex(), upload.identity.size)


def _arbitrary_file(
    store: Store,
    upload: UploadRecord,
    part: PartInfo,
    md: datasync.UploadMetadata,
    staged: Path,
    spool_dir: Path,
    file_id: str,
) -> UploadRecord:
    ctx: CaptureContext = context_from_upload_metadata(md, f"upload {upload.upload_id}")
    blob = _adopt_staged(store, upload, staged, spool_dir)
    record = arbitrary_item(
        md, upload.identity.path, blob, binary_id_for(part, upload.upload_id, 0)
    )
    return store.finish_upload(
        upload.org_id, upload.upload_id, part, ctx, file_id=file_id, binary=[record]
    )


def arbitrary_item(
    md: datasync.UploadMetadata, path: str, blob: BlobRef, binary_data_id: str
) -> BinaryRecord:
    """The one binary item an arbitrary file becomes: its blob, named and dated by ``md``.

    The name falls back to the identity's ``path``; the item's time is the file's
    modification time (and its creation time, when sent, the time requested).
    """
    name = md.file_name or PurePosixPath(path).name
    ext = md.file_extension or PurePosixPath(name).suffix
    modified = timestamp_ns(md.file_modify_time)
    return BinaryRecord(
        binary_data_id=binary_data_id,
        blob=blob,
        time_requested_ns=timestamp_ns(md.file_create_time) or modified,
        time_received_ns=modified,
        mime_type=md.mime_type,
        file_name=name,
        file_ext=ext if not ext or ext.startswith(".") else f".{ext}",
    )
