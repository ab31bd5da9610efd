"""``ferry.sync.v1.ResumableUploadService``: the exactly-once upload Ferry's sync uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from grpclib.const import Cardinality, Handler

from actors.codec import (
    UPLOAD_FILES_PATH,
    SmallFileResultWire,
    UploadFilesRequestWire,
    UploadFilesResponseWire,
)
from cloud.ingest.small import SmallFileIn
from cloud.model import UploadIdentity, UploadRecord, UploadStatus
from cloud.rpc._edge import caller
from protos.gen.ferry.sync import v1 as resumable_pb

if TYPE_CHECKING:
    from grpclib.server import Stream

    from cloud.ingest.resumable import ResumableIngest
    from cloud.rpc._edge import Edge


def _state(record: UploadRecord) -> resumable_pb.UploadState:
    if record.status == UploadStatus.FINISHED:
        return resumable_pb.UploadState.FINISHED
    return resumable_pb.UploadState.OPEN


@final
class ResumableUploadService(resumable_pb.ResumableUploadServiceBase):
    """OpenUpload, WriteChunk (compare-and-set on the offset), FinishUpload (idempotent).

    And UploadFiles, many small files at once, whose messages go through the
    hand-written codec of ``actors.codec`` (see ``__mapping__``).
    """

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

    async def upload_files_wire(self, message: UploadFilesRequestWire) -> UploadFilesResponseWire:
        """Stores small files whole; one result per file, in order.

        The reply says the files' tags were applied and binary and arbitrary
        files are taken, also to a call with no files (a robot asks that way
        before it sends tagged, binary or arbitrary files).
        """
        files = [
            SmallFileIn(
                UploadIdentity(f.part_id, f.path, f.size, f.sha256),
                f.data,
                f.tags,
                f.kind,
                f.metadata,
            )
            for f in message.files
        ]
        results = await self._edge.blocking(self._ingest.upload_files, caller(), files)
        return UploadFilesResponseWire(
            [
                SmallFileResultWire(r.upload_id, r.file_id, r.records, r.error_code, r.error)
                for r in results
            ],
            applies_tags=True,
            takes_binary=True,
            takes_files=True,
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

    def __mapping__(self) -> dict[str, Handler]:
        """The generated handlers, but ``UploadFiles`` with the hand-written codec.

        grpclib takes each method's request and reply types from here, so this
        is where ``UploadFiles`` leaves betterproto2 (~70 µs a file to parse and
        answer) for ``actors.codec``'s wire messages. ``Edge`` wraps this handler
        like every other (it hooks the server's requests, not the mapping).
        """
        mapping = super().__mapping__()
        mapping[UPLOAD_FILES_PATH] = Handler(
            self._rpc_upload_files,
            Cardinality.UNARY_UNARY,
            UploadFilesRequestWire,
            UploadFilesResponseWire,
        )
        return mapping

    async def _rpc_upload_files(
        self, stream: Stream[UploadFilesRequestWire, UploadFilesResponseWire]
    ) -> None:
        """As the generated ``__rpc_upload_files``: one request in, one reply out."""
        request = await stream.recv_message()
        assert request is not None  # as generated: a call without a message is INTERNAL
        response = await self.upload_files_wire(request)
        await stream.send_message(response)
