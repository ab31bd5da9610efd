"""``InProcessUploader``: the ``Uploader`` port straight into the cloud's ingest logic.

No network and no gRPC transport: each call runs ``cloud.ingest.resumable.ResumableIngest``
inline (no threads, so a seeded simulation stays deterministic, STYLE.md §17) as
a given ``Principal``, and the cloud's errors are classified by the same code
as on the wire: the status each error class names (``CloudError.grpc_code``),
then ``CloudLink``'s ``status_error``. The simulator puts its fault-injecting network in
front of this; the contract suite (``tests/sync/test_uploader_contract.py``)
checks that it behaves as the real ``GrpcUploader`` against a real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, Unpack, final

import trio
from grpclib.const import Status

from actors.adapters.cloud_link import status_error
from actors.adapters.grpc_uploader import (
    FINISH_UPLOAD,
    OPEN_UPLOAD,
    UPLOAD_FILES,
    WRITE_CHUNK,
    open_request,
    small_file_wire,
    small_outcome,
)
from actors.checksum import crc32
from actors.ports import Confirmation, OpenResult, WriteResult
from cloud.errors import CloudError
from cloud.ingest.small import SmallFileIn
from cloud.model import UploadIdentity, UploadStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from actors.errors import SyncError
    from actors.ports import FileIdentity, SmallFile, SmallOutcome, SyncFile
    from cloud.ingest.resumable import ResumableIngest
    from cloud.model import Principal, UploadRecord

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def classify(rpc: str, err: CloudError) -> SyncError:
    """The ``actors.errors`` instance a robot sees for a cloud error answered to ``rpc``.

    Exactly what the real path produces: the edge answers ``err.grpc_code`` and
    ``CloudLink`` classifies that status with ``status_error``.
    """
    return status_error(rpc, Status[err.grpc_code], str(err))


@final
class InProcessUploader:
    """An ``Uploader`` that calls ``ResumableIngest`` directly, inline, as ``principal``.

    Each call checks for cancellation first (a cancelled call never reaches the
    cloud), runs to completion, then yields once without being cancellable (its
    effect happened, so its result is returned), as Trio's own operations do.

    Args:
        ingest: the cloud's resumable-upload logic, over a real store.
        principal: who the calls act as (what a bearer token would carry).

    Example::

        uploader = InProcessUploader(server.resumable, Principal("k", "org", "loc"))
        up = await uploader.open(identity, file)
    """

    def __init__(self, ingest: ResumableIngest, principal: Principal) -> None:
        self._ingest = ingest
        self._principal = principal

    async def open(self, identity: FileIdentity, file: SyncFile) -> OpenResult:
        """Finds or creates the upload of ``identity`` and reports its committed offset."""
        request = open_request(identity, file)
        metadata = bytes(request.upload_metadata) if request.upload_metadata else b""
        cloud_identity = UploadIdentity(
            identity.part_id, identity.path, identity.size, identity.sha256
        )
        record = await self._call(
            OPEN_UPLOAD,
            self._ingest.open,
            self._principal,
            cloud_identity,
            int(request.kind),
            metadata,
        )
        return OpenResult(
            upload_id=record.upload_id,
            committed_offset=record.committed_offset,
            finished=record.status == UploadStatus.FINISHED,
            max_chunk_bytes=self._ingest.limits.max_chunk_bytes,
            file_id=record.file_id,
            binary_data_ids=record.binary_data_ids,
        )

    async def write(self, upload_id: str, offset: int, data: bytes) -> WriteResult:
        """Appends ``data`` if ``offset`` is the committed offset; otherwise changes nothing."""
        committed, accepted = await self._call(
            WRITE_CHUNK,
            self._ingest.write,
            self._principal,
            upload_id,
            offset,
            data,
            crc32(data),
        )
        return WriteResult(committed_offset=committed, accepted=accepted)

    async def finish(self, upload_id: str, sha256: bytes) -> Confirmation:
        """Verifies and materializes the upload once; a repeat returns the same ids."""
        record: UploadRecord = await self._call(
            FINISH_UPLOAD, self._ingest.finish, self._principal, upload_id, sha256
        )
        return Confirmation(
            file_id=record.file_id, binary_data_ids=record.binary_data_ids, records=record.records
        )

    async def upload_files(self, files: Sequence[SmallFile]) -> list[SmallOutcome]:
        """Stores small files whole, in one commit; one outcome per file."""
        wires = [small_file_wire(f) for f in files]  # what the robot would put on the wire
        batch = [
            SmallFileIn(
                UploadIdentity(w.part_id, w.path, w.size, w.sha256),
                w.data,
                w.tags,
                w.kind,
                w.metadata,
            )
            for w in wires
        ]
        results = await self._call(UPLOAD_FILES, self._ingest.upload_files, self._principal, batch)
        return [small_outcome(r.file_id, r.records, r.error_code, r.error) for r in results]

    async def _call(self, rpc: str, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            result = fn(*args)
        except CloudError as err:
            raise classify(rpc, err) from err
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
