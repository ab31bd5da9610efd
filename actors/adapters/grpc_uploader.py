"""``Uploader`` over Ferry's resumable service (``ferry.sync.v1``), through a ``CloudLink``.

The protocol is in ``docs/resumable-upload.md``: ``OpenUpload`` finds the upload
of a file identity and its committed offset, ``WriteChunk`` is compare-and-set
on that offset with a CRC-32, ``FinishUpload`` materializes the file once. This
module only converts between the port's dataclasses and the protobuf messages
(``UploadFiles``'s through the hand-written codec of ``actors.codec``, the
others through betterproto2); the link does the connection, authentication and
error mapping.

``open_request`` is also what the simulator's in-process uploader decodes, so
both uploaders describe a file to the cloud identically.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, final

from grpclib.const import Cardinality

from actors.checksum import crc32
from actors.codec import (
    UPLOAD_FILES_PATH,
    SmallFileWire,
    UploadFilesRequestWire,
    UploadFilesResponseWire,
)
from actors.errors import TransientError
from actors.ports import (
    NO_BINARY,
    NO_FILES,
    NO_TAGS,
    Confirmation,
    FileKind,
    OpenResult,
    WriteResult,
)
from actors.sync.files import arbitrary_file_metadata
from protos.gen.ferry.sync import v1 as resumable_pb
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from collections.abc import Sequence

    from grpclib.client import Channel

    from actors.adapters.cloud_link import CloudLink, Metadata
    from actors.ports import FileIdentity, SmallFile, SmallOutcome, SyncFile

_SERVICE = "ResumableUploadService"
OPEN_UPLOAD = f"{_SERVICE}/OpenUpload"
WRITE_CHUNK = f"{_SERVICE}/WriteChunk"
FINISH_UPLOAD = f"{_SERVICE}/FinishUpload"
UPLOAD_FILES = f"{_SERVICE}/UploadFiles"

LOGGER = logging.getLogger("ferry.sync")

_KINDS = {
    FileKind.CAPTURE: resumable_pb.UploadKind.CAPTURE_FILE,
    FileKind.ARBITRARY: resumable_pb.UploadKind.ARBITRARY_FILE,
}


def open_request(identity: FileIdentity, file: SyncFile) -> resumable_pb.OpenUploadRequest:
    """The ``OpenUploadRequest`` for a file.

    An arbitrary file carries its ``UploadMetadata``; a capture file's header
    already says what it is, so it carries metadata only to add the walker's
    tags and dataset ids (the cloud merges them with the header's tags).
    """
    metadata: datasync.UploadMetadata | None = None
    if file.kind is FileKind.ARBITRARY:
        metadata = arbitrary_file_metadata(file, identity.part_id)
    elif file.tags or file.dataset_ids:
        metadata = datasync.UploadMetadata(
            part_id=identity.part_id, tags=list(file.tags), dataset_ids=list(file.dataset_ids)
        )
    return resumable_pb.OpenUploadRequest(
        identity=identity_message(identity), kind=_KINDS[file.kind], upload_metadata=metadata
    )


def small_file_wire(file: SmallFile) -> SmallFileWire:
    """A ``SmallFile`` as ``UploadFiles`` carries it (a capture file's kind left unset)."""
    ident = file.identity
    kind = _KINDS[file.kind] if file.kind is not FileKind.CAPTURE else 0
    return SmallFileWire(
        ident.part_id,
        ident.path,
        ident.size,
        ident.sha256,
        file.data,
        file.tags,
        kind,
        file.metadata,
    )


def identity_message(identity: FileIdentity) -> resumable_pb.FileIdentity:
    """A file's upload identity on the wire."""
    return resumable_pb.FileIdentity(
        part_id=identity.part_id, path=identity.path, size=identity.size, sha256=identity.sha256
    )


def open_result(reply: resumable_pb.OpenUploadResponse) -> OpenResult:
    """The port's view of an ``OpenUploadResponse``."""
    return OpenResult(
        upload_id=reply.upload_id,
        committed_offset=reply.committed_offset,
        finished=reply.state == resumable_pb.UploadState.FINISHED,
        max_chunk_bytes=reply.max_chunk_bytes,
        file_id=reply.file_id,
        binary_data_ids=tuple(reply.binary_data_ids),
    )


@final
class GrpcUploader:
    """The production ``Uploader``: ``ferry.sync.v1`` over the shared ``CloudLink``.

    Every method raises only ``actors.errors`` classes (mapped by the link):
    ``OfflineError``/``TransientError`` to retry, ``PermanentError`` to park the
    file, ``ResumableUnsupported`` when the server has no resumable service.

    Example::

        async with open_aio_loop():
            uploader = GrpcUploader(CloudLink(settings))
            up = await uploader.open(identity, file)
    """

    def __init__(self, link: CloudLink) -> None:
        self._link = link
        self._takes: tuple[bool, bool, bool] | None = None
        """Whether the server applies ``SmallFile.tags``, takes binary capture files and
        takes arbitrary files; None until asked."""

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        """Finds or creates the upload of ``identity`` and reports its committed offset."""
        request = open_request(identity, file)

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> resumable_pb.OpenUploadResponse:
            stub = resumable_pb.ResumableUploadServiceStub(channel)
            return await stub.open_upload(request, metadata=md, timeout=timeout_s)

        return open_result(await self._link.call(OPEN_UPLOAD, attempt))

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        """Sends one chunk at ``offset`` with its CRC-32; a stale offset changes nothing."""
        request = resumable_pb.WriteChunkRequest(
            upload_id=upload_id, offset=offset, data=data, crc32=crc32(data)
        )

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> resumable_pb.WriteChunkResponse:
            stub = resumable_pb.ResumableUploadServiceStub(channel)
            return await stub.write_chunk(request, metadata=md, timeout=timeout_s)

        reply = await self._link.call(WRITE_CHUNK, attempt, payload_bytes=len(data))
        return WriteResult(committed_offset=reply.committed_offset, accepted=reply.accepted)

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        """Verifies and materializes the upload; a repeat returns the same ids."""
        request = resumable_pb.FinishUploadRequest(upload_id=upload_id, sha256=sha256)

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> resumable_pb.FinishUploadResponse:
            stub = resumable_pb.ResumableUploadServiceStub(channel)
            return await stub.finish_upload(request, metadata=md, timeout=timeout_s)

        reply = await self._link.call(FINISH_UPLOAD, attempt)
        return Confirmation(
            file_id=reply.file_id,
            binary_data_ids=tuple(reply.binary_data_ids),
            records=reply.records,
        )

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        """Sends small files whole in one ``UploadFiles`` call.

        Tagged, binary and arbitrary files go only to a server that said it takes
        them: before the first such file, a call with no files asks. An older
        server would store tagged files without their tags (it skips the field)
        and refuses binary and arbitrary ones, so there each gets ``NO_TAGS``,
        ``NO_BINARY`` or ``NO_FILES`` as its outcome and goes the resumable way
        (whose ``OpenUpload`` carries its tags and metadata), and only the other
        files are sent.
        """
        if any(f.tags or f.binary or f.kind is not FileKind.CAPTURE for f in files):
            takes = await self._takes_what()
            refused = [_refusal(f, takes) for f in files]
            if any(refused):
                sent = [f for f, why in zip(files, refused, strict=True) if not why]
                answers = iter(await self._send(sent) if sent else [])
                return [why or next(answers) for why in refused]
        return await self._send(files)

    async def _takes_what(self) -> tuple[bool, bool, bool]:
        """Whether the server applies tags, takes binary and takes arbitrary files (asked once)."""
        if self._takes is None:
            reply = await self._upload_files([])
            self._takes = (reply.applies_tags, reply.takes_binary, reply.takes_files)
            if not all(self._takes):
                LOGGER.warning(
                    "the cloud is older than this robot: small files with tags (%s), "
                    "binary ones (%s) or arbitrary ones (%s) are uploaded one by one",
                    "kept" if reply.applies_tags else "dropped",
                    "taken" if reply.takes_binary else "refused",
                    "taken" if reply.takes_files else "refused",
                )
        return self._takes

    async def _send(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        """One call with ``files``; one outcome per file, in order."""
        reply = await self._upload_files(files)
        if len(reply.results) != len(files):
            raise TransientError(
                f"{len(reply.results)} results for {len(files)} files", where=UPLOAD_FILES
            )
        return [small_outcome(r.file_id, r.records, r.error_code, r.error) for r in reply.results]

    async def _upload_files(self, files: Sequence[SmallFile]) -> UploadFilesResponseWire:
        """One ``UploadFiles`` call.

        The messages go through the hand-written codec of ``actors.codec``
        (betterproto2 cost ~70 µs a file here); the call itself is made as the
        generated stub makes it, so transport and status errors are unchanged.
        """
        request = UploadFilesRequestWire([small_file_wire(f) for f in files])

        async def attempt(
            channel: Channel, md: Metadata, timeout_s: float | None
        ) -> UploadFilesResponseWire:
            async with channel.request(
                UPLOAD_FILES_PATH,
                Cardinality.UNARY_UNARY,
                UploadFilesRequestWire,
                UploadFilesResponseWire,
                timeout=timeout_s,
                deadline=None,
                metadata=md,
            ) as stream:
                await stream.send_message(request, end=True)
                try:
                    reply = await stream.recv_message()
                except ValueError as exc:  # the reply's bytes are not an UploadFilesResponse
                    raise TransientError(f"malformed reply: {exc}", where=UPLOAD_FILES) from exc
            if reply is None:
                raise TransientError("the call ended without a reply", where=UPLOAD_FILES)
            return reply

        total = sum(len(f.data) for f in files)
        return await self._link.call(UPLOAD_FILES, attempt, payload_bytes=total)


def _refusal(file: SmallFile, takes: tuple[bool, bool, bool]) -> str:
    """Why a server that ``takes`` (tags, binary, files) cannot be sent ``file`` ('' if it can)."""
    applies_tags, takes_binary, takes_files = takes
    if file.kind is not FileKind.CAPTURE and not takes_files:
        return NO_FILES
    if file.binary and not takes_binary:
        return NO_BINARY
    if file.tags and not applies_tags:
        return NO_TAGS
    return ""


def small_outcome(file_id: str, records: int, error_code: str, error: str) -> SmallOutcome:
    """One ``UploadFiles`` result as the port's outcome."""
    if error_code:
        return f"{error_code}: {error}"
    return Confirmation(file_id=file_id, records=records)
