"""``WholeFileUploader`` over Viam's own DataSyncService, as the RDK uploads (spec §4.4).

Used when the cloud has no resumable service. Each file goes up whole, per attempt:

- a **tabular** capture file: one unary ``DataCaptureUpload`` with all its readings;
- a **binary** capture file: each reading on its own, through unary
  ``DataCaptureUpload`` when its payload is at most 1,000,000 bytes and through
  ``StreamingDataCaptureUpload`` (metadata, then 64 KiB chunks) when larger;
- an **arbitrary** file: a ``FileUpload`` stream (metadata with type FILE and
  the absolute path, then 64 KiB ``FileData`` chunks).

Streamed payloads are read from disk chunk by chunk while they are sent, never
whole (spec §7 item 3), and every attempt starts again at the beginning of its
payload (DATA-3114, spec §4.4). All file access goes through the injected
``FileSystem`` on the ``BlockingRunner``; a capture file that cannot be parsed is
a ``PermanentError`` naming the file and byte offset. The ``CloudLink`` does the
connection, authentication and the classification of network failures.

This module is the uploader and the ``UploadMetadata`` it builds; the blocking
reads that parse capture files are in ``actors.adapters._capture_reads``,
re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, TypeVar, TypeVarTuple, Unpack, final

from actors.adapters._capture_reads import (
    BinaryReading,
    locate_binary,
    read_at,
    read_header,
    read_tabular,
)
from actors.adapters.aio import trio_as_aio
from actors.codec import CaptureFileError, extension_for_mime
from actors.errors import PermanentError, TransientError
from actors.ports import Confirmation, FileKind
from actors.sync.files import arbitrary_file_metadata
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from grpclib.client import Channel

    from actors.adapters.cloud_link import CloudLink, Metadata
    from actors.ports import BlockingRunner, FileSystem, SyncFile

__all__ = [
    "CHUNK_BYTES",
    "DATA_CAPTURE_UPLOAD",
    "FILE_UPLOAD",
    "MAX_UNARY_BYTES",
    "STREAMING_DATA_CAPTURE_UPLOAD",
    "BinaryReading",
    "ViamUploader",
    "capture_upload_metadata",
    "locate_binary",
    "read_at",
    "read_header",
    "read_tabular",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_SERVICE = "DataSyncService"
DATA_CAPTURE_UPLOAD = f"{_SERVICE}/DataCaptureUpload"
STREAMING_DATA_CAPTURE_UPLOAD = f"{_SERVICE}/StreamingDataCaptureUpload"
FILE_UPLOAD = f"{_SERVICE}/FileUpload"

# rdk's MaxUnaryFileSize (decimal megabyte) and its stream chunk size (spec §4.4).
MAX_UNARY_BYTES = 1_000_000
CHUNK_BYTES = 64 * 1024


def capture_upload_metadata(
    header: datasync.DataCaptureMetadata, file: SyncFile, part_id: str
) -> datasync.UploadMetadata:
    """The ``UploadMetadata`` the RDK builds from a capture file's header (spec §3.1).

    ``file_name`` stays unset; a MIME type with a known extension overrides the
    header's extension. The walker's tags are added to the header's (deduplicated).
    """
    return datasync.UploadMetadata(
        part_id=part_id,
        component_type=header.component_type,
        component_name=header.component_name,
        method_name=header.method_name,
        type=header.type,
        method_parameters=dict(header.method_parameters),
        file_extension=extension_for_mime(header.mime_type) or header.file_extension,
        tags=list(dict.fromkeys([*header.tags, *file.tags])),
        dataset_ids=list(file.dataset_ids),
        mime_type=header.mime_type,
    )


# ------------------------------------------------------------------ the uploader


@final
class ViamUploader:
    """Uploads whole files with Viam's DataSyncService RPCs (the fallback path).

    Args:
        link: the shared, authenticated connection.
        part_id: the robot part the data belongs to (``UploadMetadata.part_id``).
        fs: where files are read.
        runner: where the blocking reads run (worker threads; inline in sim).
        chunk_bytes: bytes per streamed message (64 KiB, as the RDK).
        max_unary_bytes: the largest binary payload sent in one unary call.

    Example::

        async with open_aio_loop():
            uploader = ViamUploader(link, part_id=part, fs=OsFileSystem(), runner=ThreadRunner())
            confirmation = await uploader.upload(file)
    """

    def __init__(
        self,
        link: CloudLink,
        *,
        part_id: str,
        fs: FileSystem,
        runner: BlockingRunner,
        chunk_bytes: int = CHUNK_BYTES,
        max_unary_bytes: int = MAX_UNARY_BYTES,
    ) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self._link = link
        self._part_id = part_id
        self._fs = fs
        self._runner = runner
        self._chunk_bytes = chunk_bytes
        self._max_unary_bytes = max_unary_bytes

    async def upload(self, file: SyncFile) -> Confirmation:
        """Uploads all of ``file``; a capture file with no readings is not sent.

        Raises:
            PermanentError: a capture file that cannot be parsed (names the file
                and offset) or that the server rejects as invalid.
            TransientError: a file that cannot be read now (``OSError``), or a
                retryable server answer; ``OfflineError`` when unreachable.
            ResumableUnsupported: never in practice (these are Viam's own RPCs).
        """
        if file.kind is FileKind.ARBITRARY:
            return await self._arbitrary(file)
        header, header_end = await self._read(file.path, read_header, self._fs, file.path)
        metadata = capture_upload_metadata(header, file, self._part_id)
        if header.type == datasync.DataType.TABULAR_SENSOR:
            return await self._tabular(file, metadata)
        if header.type == datasync.DataType.BINARY_SENSOR:
            return await self._binary(file, metadata, header_end)
        raise PermanentError(
            "not a valid capture file: offset 0: header type must be TABULAR_SENSOR or "
            f"BINARY_SENSOR, got {header.type.name}",
            where=str(file.path),
        )

    # ----------------------------------------------------------------- paths

    async def _tabular(self, file: SyncFile, metadata: datasync.UploadMetadata) -> Confirmation:
        readings = await self._read(file.path, read_tabular, self._fs, file.path)
        if not readings:
            return Confirmation(file_id="", records=0)
        request = datasync.DataCaptureUploadRequest(metadata=metadata, sensor_contents=readings)
        reply = await self._unary(request, payload_bytes=file.size)
        return Confirmation(file_id=reply.file_id, records=len(readings))

    async def _binary(
        self, file: SyncFile, metadata: datasync.UploadMetadata, header_end: int
    ) -> Confirmation:
        path = file.path
        readings = await self._read(path, locate_binary, self._fs, path, header_end)
        file_ids: list[str] = []
        binary_ids: list[str] = []
        # Opening and every read go through the runner; closing a file opened
        # only for reading does not block, so ``with`` closes it on the loop.
        with await self._read(path, self._fs.open_read, path) as f:
            for reading in readings:
                read = self._capture_reader(f, path, reading)
                if reading.payload_size <= self._max_unary_bytes:
                    file_id, binary_id = await self._unary_reading(metadata, reading, read)
                else:
                    file_id, binary_id = await self._streamed_reading(metadata, reading, read)
                file_ids.append(file_id)
                binary_ids.append(binary_id)
        return Confirmation(
            file_id=file_ids[0] if file_ids else "",
            binary_data_ids=tuple(binary_ids),
            records=len(readings),
        )

    async def _unary_reading(
        self,
        metadata: datasync.UploadMetadata,
        reading: BinaryReading,
        read: Callable[[int, int], Awaitable[bytes]],
    ) -> tuple[str, str]:
        payload = await read(reading.payload_offset, reading.payload_size)
        contents = [datasync.SensorData(metadata=reading.metadata, binary=payload)]
        request = datasync.DataCaptureUploadRequest(metadata=metadata, sensor_contents=contents)
        reply = await self._unary(request, payload_bytes=len(payload))
        return reply.file_id, reply.binary_data_id

    async def _streamed_reading(
        self,
        metadata: datasync.UploadMetadata,
        reading: BinaryReading,
        read: Callable[[int, int], Awaitable[bytes]],
    ) -> tuple[str, str]:
        first = datasync.StreamingDataCaptureUploadRequest(
            metadata=datasync.DataCaptureUploadMetadata(
                upload_metadata=metadata, sensor_metadata=reading.metadata
            )
        )

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> datasync.StreamingDataCaptureUploadResponse:
            async def messages() -> AsyncIterator[datasync.StreamingDataCaptureUploadRequest]:
                yield first
                chunks = self._chunks(read, reading.payload_offset, reading.payload_size)
                async for chunk in chunks:
                    yield datasync.StreamingDataCaptureUploadRequest(data=chunk)

            stub = datasync.DataSyncServiceStub(channel)
            return await stub.streaming_data_capture_upload(
                messages(), metadata=md, timeout=timeout_s
            )

        reply = await self._link.call(
            STREAMING_DATA_CAPTURE_UPLOAD, attempt, payload_bytes=reading.payload_size
        )
        return reply.file_id, reply.binary_data_id

    async def _arbitrary(self, file: SyncFile) -> Confirmation:
        path = file.path
        first = datasync.FileUploadRequest(metadata=arbitrary_file_metadata(file, self._part_id))
        with await self._read(path, self._fs.open_read, path) as f:
            size = await self._read(path, self._fs.size, path)
            read = self._arbitrary_reader(f, path)

            async def attempt(
                channel: Channel, md: Metadata, timeout_s: float | None
            ) -> datasync.FileUploadResponse:
                async def messages() -> AsyncIterator[datasync.FileUploadRequest]:
                    yield first
                    async for chunk in self._chunks(read, 0, size):
                        yield datasync.FileUploadRequest(
                            file_contents=datasync.FileData(data=chunk)
                        )

                stub = datasync.DataSyncServiceStub(channel)
                return await stub.file_upload(messages(), metadata=md, timeout=timeout_s)

            reply = await self._link.call(FILE_UPLOAD, attempt, payload_bytes=size)
        return Confirmation(file_id=reply.file_id, binary_data_ids=(reply.binary_data_id,))

    # --------------------------------------------------------------- helpers

    async def _unary(
        self, request: datasync.DataCaptureUploadRequest, *, payload_bytes: int
    ) -> datasync.DataCaptureUploadResponse:
        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> datasync.DataCaptureUploadResponse:
            stub = datasync.DataSyncServiceStub(channel)
            return await stub.data_capture_upload(request, metadata=md, timeout=timeout_s)

        return await self._link.call(DATA_CAPTURE_UPLOAD, attempt, payload_bytes=payload_bytes)

    async def _chunks(
        self, read: Callable[[int, int], Awaitable[bytes]], start: int, size: int
    ) -> AsyncIterator[bytes]:
        """The payload at ``[start, start + size)`` in chunks (asyncio side).

        Each chunk is read by the Trio function ``read`` (through the runner)
        just before it is sent, so at most one chunk is in memory.
        """
        read_aio = trio_as_aio(read)
        end = start + size
        pos = start
        while pos < end:
            n = min(self._chunk_bytes, end - pos)
            yield await read_aio(pos, n)
            pos += n

    def _capture_reader(
        self, f: BinaryIO, path: Path, reading: BinaryReading
    ) -> Callable[[int, int], Awaitable[bytes]]:
        """Reads payload bytes; a short read means the capture file is truncated."""

        async def read(offset: int, size: int) -> bytes:
            data = await self._read(path, read_at, f, offset, size)
            if len(data) < size:
                raise PermanentError(
                    f"not a valid capture file: offset {reading.offset}: payload of "
                    f"{reading.payload_size} bytes ends at byte {offset + len(data)}",
                    where=str(path),
                )
            return data

        return read

    def _arbitrary_reader(self, f: BinaryIO, path: Path) -> Callable[[int, int], Awaitable[bytes]]:
        """Reads file bytes; a short read means the file shrank while it was sent."""

        async def read(offset: int, size: int) -> bytes:
            data = await self._read(path, read_at, f, offset, size)
            if len(data) < size:
                raise TransientError(
                    f"file shrank while it was uploaded (ends at byte {offset + len(data)})",
                    where=str(path),
                )
            return data

        return read

    async def _read(self, path: Path, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        """Runs a blocking read on the runner, classifying its failures."""
        try:
            return await self._runner.run(fn, *args)
        except CaptureFileError as exc:
            raise PermanentError(
                f"not a valid capture file: offset {exc.offset}: {exc.reason}", where=str(path)
            ) from exc
        except OSError as exc:
            raise TransientError(f"cannot read: {exc}", where=str(path)) from exc
