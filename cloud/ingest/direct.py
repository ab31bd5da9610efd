"""Viam's one-shot upload RPCs (``DataSyncService``), as transport-free logic.

``DataCaptureUpload`` carries its readings in one message; ``FileUpload`` and
``StreamingDataCaptureUpload`` stream a payload after a metadata packet (the
handler spools it, see ``spool.py``). Nothing here is resumable or idempotent —
that is Viam's protocol; Ferry's own sync uses ``resumable.py``. Each call
stores all of its data or none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, final

from actors.codec import mime_for_extension
from cloud.errors import InvalidArgument
from cloud.ingest.convert import (
    annotations_json,
    binary_payload,
    context_from_upload_metadata,
    tabular_record,
    timestamp_ns,
)
from cloud.model import BinaryRecord
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from pathlib import Path

    from cloud.ingest.ids import IdSource
    from cloud.model import BlobRef, CaptureContext, PartInfo, Principal
    from cloud.store.port import Store

# Viam's deprecated enum, still sent by older clients.
MIME_BY_ENUM = {
    datasync.MimeType.IMAGE_JPEG: "image/jpeg",
    datasync.MimeType.IMAGE_PNG: "image/png",
    datasync.MimeType.APPLICATION_PCD: "pointcloud/pcd",
    datasync.MimeType.VIDEO_MP4: "video/mp4",
}


@dataclass(frozen=True)
class UploadIds:
    """What an upload RPC answers: Viam clients read one or the other."""

    file_id: str
    binary_data_id: str


def _dotted(ext: str) -> str:
    return ext if not ext or ext.startswith(".") else f".{ext}"


@final
class DirectIngest:
    """Stores Viam's one-shot uploads."""

    def __init__(self, store: Store, ids: IdSource) -> None:
        self._store = store
        self._ids = ids

    def _part(self, who: Principal, md: datasync.UploadMetadata | None, what: str) -> PartInfo:
        if md is None:
            raise InvalidArgument(f"{what}: metadata is required")
        if not md.part_id:
            raise InvalidArgument(f"{what}: metadata.part_id is required")
        return self._store.resolve_part(who, md.part_id)

    def data_capture_upload(
        self, who: Principal, req: datasync.DataCaptureUploadRequest
    ) -> UploadIds:
        """Stores a ``DataCaptureUpload``: many tabular readings or one binary reading.

        Raises:
            InvalidArgument: missing metadata, an unsupported data type, or
                contents that do not match it.
            PermissionDenied: the part is outside the caller's scope.
        """
        what = "DataCaptureUpload"
        md = req.metadata
        part = self._part(who, md, what)
        assert md is not None  # checked by _part
        ctx = context_from_upload_metadata(md, f"{what}.metadata")
        file_id = self._ids.new_id()
        if md.type == datasync.DataType.TABULAR_SENSOR:
            if not req.sensor_contents:
                raise InvalidArgument(f"{what}: sensor_contents is empty")
            records = [
                tabular_record(item, f"{what}.sensor_contents[{i}]")
                for i, item in enumerate(req.sensor_contents)
            ]
            self._store.commit_tabular(part, ctx, records, file_id=file_id)
            return UploadIds(file_id=file_id, binary_data_id=file_id)
        if md.type == datasync.DataType.BINARY_SENSOR:
            if len(req.sensor_contents) != 1:
                raise InvalidArgument(
                    f"{what}: a binary upload carries exactly one sensor_contents item, "
                    f"got {len(req.sensor_contents)}"
                )
            item = req.sensor_contents[0]
            payload = binary_payload(item, f"{what}.sensor_contents[0]")
            meta = item.metadata or datasync.SensorMetadata()
            blob = self._store.put_blob(payload)
            return self._commit_binary(part, ctx, blob, meta, file_id, file_name=md.file_name)
        raise InvalidArgument(
            f"{what}: metadata.type must be TABULAR_SENSOR or BINARY_SENSOR, got {md.type.name}"
        )

    def file_upload(
        self, who: Principal, md: datasync.UploadMetadata | None, spooled: tuple[Path, str, int]
    ) -> UploadIds:
        """Stores a ``FileUpload`` whose bytes were spooled to a file.

        Raises:
            InvalidArgument: missing metadata or part id.
            PermissionDenied: the part is outside the caller's scope.
        """
        what = "FileUpload"
        part = self._part(who, md, what)
        assert md is not None
        ctx = context_from_upload_metadata(md, f"{what}.metadata")
        path, sha, size = spooled
        blob = self._store.adopt_blob(path, sha, size)
        file_id = self._ids.new_id()
        ext = _dotted(md.file_extension or PurePosixPath(md.file_name).suffix)
        record = BinaryRecord(
            binary_data_id=self._ids.binary_data_id(part.org_id, part.location_id, file_id),
            blob=blob,
            # Viam's backend derives a missing MIME type from the extension.
            mime_type=md.mime_type or mime_for_extension(ext),
            file_name=md.file_name,
            file_ext=ext,
        )
        self._store.commit_binary(part, ctx, record, file_id=file_id)
        return UploadIds(file_id=file_id, binary_data_id=record.binary_data_id)

    def streaming_upload(
        self,
        who: Principal,
        md: datasync.DataCaptureUploadMetadata | None,
        spooled: tuple[Path, str, int],
    ) -> UploadIds:
        """Stores a ``StreamingDataCaptureUpload`` (one large binary reading).

        Raises:
            InvalidArgument: missing metadata, or a type other than BINARY_SENSOR.
            PermissionDenied: the part is outside the caller's scope.
        """
        what = "StreamingDataCaptureUpload"
        if md is None or md.upload_metadata is None:
            raise InvalidArgument(f"{what}: the first message must carry metadata.upload_metadata")
        upload_md = md.upload_metadata
        part = self._part(who, upload_md, what)
        if upload_md.type not in (datasync.DataType.BINARY_SENSOR, datasync.DataType.UNSPECIFIED):
            raise InvalidArgument(
                f"{what}: metadata.upload_metadata.type must be BINARY_SENSOR, "
                f"got {upload_md.type.name}"
            )
        ctx = context_from_upload_metadata(upload_md, f"{what}.metadata.upload_metadata")
        path, sha, size = spooled
        blob = self._store.adopt_blob(path, sha, size)
        meta = md.sensor_metadata or datasync.SensorMetadata()
        return self._commit_binary(
            part, ctx, blob, meta, self._ids.new_id(), file_name=upload_md.file_name
        )

    def _commit_binary(
        self,
        part: PartInfo,
        ctx: CaptureContext,
        blob: BlobRef,
        meta: datasync.SensorMetadata,
        file_id: str,
        *,
        file_name: str,
    ) -> UploadIds:
        mime = (
            ctx.mime_type
            or MIME_BY_ENUM.get(meta.mime_type, "")
            or mime_for_extension(ctx.file_extension)
        )
        record = BinaryRecord(
            binary_data_id=self._ids.binary_data_id(part.org_id, part.location_id, file_id),
            blob=blob,
            time_requested_ns=timestamp_ns(meta.time_requested),
            time_received_ns=timestamp_ns(meta.time_received),
            mime_type=mime,
            file_name=file_name,
            file_ext=_dotted(ctx.file_extension),
            annotations=annotations_json(meta.annotations),
        )
        self._store.commit_binary(part, ctx, record, file_id=file_id)
        return UploadIds(file_id=file_id, binary_data_id=record.binary_data_id)
