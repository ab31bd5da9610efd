"""``viam.app.datasync.v1.DataSyncService``: Viam's own upload RPCs, unmodified.

Streamed payloads are spooled to disk as they arrive (bounded memory), then
handed to ``cloud.ingest.direct``. A stream that breaks off, or fails
validation, leaves nothing stored.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, TypeVar, final

import betterproto2

from cloud.errors import InvalidArgument
from cloud.ingest.spool import Spool
from cloud.rpc._edge import caller
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from cloud.ingest.direct import DirectIngest, UploadIds
    from cloud.rpc._edge import Edge


_M = TypeVar("_M", datasync.UploadMetadata, datasync.DataCaptureUploadMetadata)
_R = TypeVar("_R", datasync.FileUploadResponse, datasync.StreamingDataCaptureUploadResponse)


def _file_data(value: object) -> bytes | None:
    return value.data if isinstance(value, datasync.FileData) else None


def _raw_data(value: object) -> bytes | None:
    return value if isinstance(value, bytes) else None


def _with_file_id(response: _R, ids: UploadIds) -> _R:
    """Fills the deprecated ``file_id`` too (older clients read it).

    Set after construction: passing it to the constructor makes betterproto2 emit
    a DeprecationWarning on every upload.
    """
    response.file_id = ids.file_id
    return response


@final
class DataSyncService(datasync.DataSyncServiceBase):
    """Serves DataCaptureUpload, FileUpload and StreamingDataCaptureUpload."""

    def __init__(
        self, edge: Edge, ingest: DirectIngest, *, spool_dir: Path, max_upload_bytes: int
    ) -> None:
        self._edge = edge
        self._ingest = ingest
        self._spool_dir = spool_dir
        self._max = max_upload_bytes

    async def data_capture_upload(
        self, message: datasync.DataCaptureUploadRequest
    ) -> datasync.DataCaptureUploadResponse:
        """Stores tabular readings or one binary reading; both ids are filled."""
        ids = await self._edge.blocking(self._ingest.data_capture_upload, caller(), message)
        return datasync.DataCaptureUploadResponse(
            file_id=ids.file_id, binary_data_id=ids.binary_data_id
        )

    async def file_upload(
        self, messages: AsyncIterator[datasync.FileUploadRequest]
    ) -> datasync.FileUploadResponse:
        """Stores an arbitrary file: metadata first, then its contents in any number of packets."""
        what = "FileUpload"
        spool = self._new_spool(what)
        try:
            md = await self._receive(
                messages, spool, what, datasync.UploadMetadata, "file_contents", _file_data
            )
            spooled = await self._edge.blocking(spool.close)
            ids = await self._edge.blocking(self._ingest.file_upload, caller(), md, spooled)
        finally:
            spool.discard()
        return _with_file_id(datasync.FileUploadResponse(binary_data_id=ids.binary_data_id), ids)

    async def streaming_data_capture_upload(
        self, messages: AsyncIterator[datasync.StreamingDataCaptureUploadRequest]
    ) -> datasync.StreamingDataCaptureUploadResponse:
        """Stores one large binary reading streamed after its metadata."""
        what = "StreamingDataCaptureUpload"
        spool = self._new_spool(what)
        try:
            md = await self._receive(
                messages, spool, what, datasync.DataCaptureUploadMetadata, "data", _raw_data
            )
            spooled = await self._edge.blocking(spool.close)
            ids = await self._edge.blocking(self._ingest.streaming_upload, caller(), md, spooled)
        finally:
            spool.discard()
        return _with_file_id(
            datasync.StreamingDataCaptureUploadResponse(binary_data_id=ids.binary_data_id), ids
        )

    async def _receive(
        self,
        messages: AsyncIterator[betterproto2.Message],
        spool: Spool,
        what: str,
        metadata_type: type[_M],
        data_field: str,
        data_of: Callable[[object], bytes | None],
    ) -> _M:
        """Reads a metadata-first upload stream, spooling its data; returns the metadata.

        Raises:
            InvalidArgument: the first message is not metadata, a later one is
                not data, or the stream is empty.
        """
        md: _M | None = None
        index = 0
        async for message in messages:
            kind, value = betterproto2.which_one_of(message, "upload_packet")
            data = data_of(value) if kind == data_field else None
            if index == 0:
                if kind != "metadata" or not isinstance(value, metadata_type):
                    raise InvalidArgument(f"{what}: the first message must be metadata")
                md = value
            elif data is not None:
                await self._edge.blocking(spool.write, data)
            else:
                raise InvalidArgument(
                    f"{what}: message {index} must be {data_field}, got {kind or 'nothing'}"
                )
            index += 1
        if md is None:
            raise InvalidArgument(f"{what}: the stream carried no metadata")
        return md

    def _new_spool(self, what: str) -> Spool:
        path = self._spool_dir / f"stream-{uuid.uuid4().hex}"
        return Spool(path, limit=self._max, what=what)
