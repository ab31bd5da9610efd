"""``ferry.sync.v1.ResumableUploadService``: the exactly-once upload Ferry's sync uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from cloud.model import UploadIdentity, UploadRecord, UploadStatus
from cloud.rpc._edge import caller
from protos.gen.ferry.sync import v1 as resumable_pb

if TYPE_CHECKING:
    from cloud.ingest.resumable import ResumableIngest
    from cloud.rpc._edge import Edge


def _state(record: UploadRecord) -> resumable_pb.UploadState:
    if record.status == UploadStatus.FINISHED:
        return resumable_pb.UploadState.FINISHED
    return resumable_pb.UploadState.OPEN


@final
class ResumableUploadService(resumable_pb.ResumableUploadServiceBase):
    """OpenUpload, WriteChunk (compare-and-set on the offset), FinishUpload (idempotent)."""

    def __init__(self, edge: Edge, ingest: ResumableIngest) -> None:
        self._edge = edge
        self._ingest = ingest

    async def open_upload(
        self, message: resumable_pb.OpenUploadRequest
    ) -> resumable_pb.OpenUploadResponse:
        """Finds or creates the upload of a file and reports its committed offset."""
        ident = message.identity or resumable_pb.FileIdentity()
        identity = UploadIdentity(ident.part_id, ident.path, ident.size, ident.sha256)
        metadata = bytes(message.upload_metadata) if message.upload_metadata else b""
        record = await self._edge.blocking(
            self._ingest.open, caller(), identity, int(message.kind), metadata
        )
        return resumable_pb.OpenUploadResponse(
            upload_id=record.upload_id,
            state=_state(record),
            committed_offset=record.committed_offset,
            max_chunk_bytes=self._ingest.limits.max_chunk_bytes,
            binary_data_ids=list(record.binary_data_ids),
            file_id=record.file_id,
        )

    async def write_chunk(
        self, message: resumable_pb.WriteChunkRequest
    ) -> resumable_pb.WriteChunkResponse:
        """Appends a chunk at the committed offset; any other offset changes nothing."""
        committed, accepted = await self._edge.blocking(
            self._ingest.write,
            caller(),
            message.upload_id,
            message.offset,
            message.data,
            message.crc32,
        )
        return resumable_pb.WriteChunkResponse(committed_offset=committed, accepted=accepted)

    async def upload_files(
        self, message: resumable_pb.UploadFilesRequest
    ) -> resumable_pb.UploadFilesResponse:
        """Stores small tabular capture files whole; one result per file, in order."""
        files = []
        for f in message.files:
            ident = f.identity or resumable_pb.FileIdentity()
            identity = UploadIdentity(ident.part_id, ident.path, ident.size, ident.sha256)
            files.append((identity, bytes(f.data)))
        results = await self._edge.blocking(self._ingest.upload_files, caller(), files)
        return resumable_pb.UploadFilesResponse(
            results=[
                resumable_pb.SmallFileResult(
                    upload_id=r.upload_id,
                    file_id=r.file_id,
                    records=r.records,
                    error_code=r.error_code,
                    error=r.error,
                )
                for r in results
            ]
        )

    async def finish_upload(
        self, message: resumable_pb.FinishUploadRequest
    ) -> resumable_pb.FinishUploadResponse:
        """Verifies and materializes the upload; a repeat returns the same ids."""
        record = await self._edge.blocking(
            self._ingest.finish, caller(), message.upload_id, message.sha256
        )
        return resumable_pb.FinishUploadResponse(
            file_id=record.file_id,
            binary_data_ids=list(record.binary_data_ids),
            records=record.records,
        )
