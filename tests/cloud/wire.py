"""A minimal client of the cloud for tests: auth, and the resumable upload loop over gRPC."""

from __future__ import annotations

import hashlib
import zlib
from typing import TYPE_CHECKING

from protos.gen.ferry.sync import v1 as resumable_pb
from protos.gen.proto.rpc import v1 as rpc_pb

if TYPE_CHECKING:
    from grpclib.client import Channel


class Raw:
    """A message that is whatever bytes we say: sends arbitrary bytes through grpclib."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # grpclib's codec protocol
        return self.data

    @classmethod
    def FromString(cls, data: bytes) -> Raw:  # grpclib's codec protocol
        return cls(data)


async def bearer(channel: Channel, key_id: str, key: str) -> dict[str, str]:
    """Call metadata carrying a fresh bearer token for an API key."""
    reply = await rpc_pb.AuthServiceStub(channel).authenticate(
        rpc_pb.AuthenticateRequest(
            entity=key_id, credentials=rpc_pb.Credentials(type="api-key", payload=key)
        )
    )
    return {"authorization": f"Bearer {reply.access_token}"}


def identity(data: bytes, part_id: str, path: str) -> resumable_pb.FileIdentity:
    return resumable_pb.FileIdentity(
        part_id=part_id, path=path, size=len(data), sha256=hashlib.sha256(data).digest()
    )


async def open_upload(
    channel: Channel,
    md: dict[str, str],
    data: bytes,
    part_id: str,
    path: str,
    kind: resumable_pb.UploadKind = resumable_pb.UploadKind.CAPTURE_FILE,
) -> resumable_pb.OpenUploadResponse:
    return await resumable_pb.ResumableUploadServiceStub(channel).open_upload(
        resumable_pb.OpenUploadRequest(identity=identity(data, part_id, path), kind=kind),
        metadata=md,
    )


async def write_chunk(
    channel: Channel, md: dict[str, str], upload_id: str, offset: int, chunk: bytes
) -> resumable_pb.WriteChunkResponse:
    return await resumable_pb.ResumableUploadServiceStub(channel).write_chunk(
        resumable_pb.WriteChunkRequest(
            upload_id=upload_id, offset=offset, data=chunk, crc32=zlib.crc32(chunk)
        ),
        metadata=md,
    )


async def upload(
    channel: Channel,
    md: dict[str, str],
    data: bytes,
    *,
    part_id: str,
    path: str,
    chunk: int = 1 << 20,
    kind: resumable_pb.UploadKind = resumable_pb.UploadKind.CAPTURE_FILE,
) -> resumable_pb.FinishUploadResponse:
    """The sync client's loop: open, continue at the committed offset, finish."""
    up = await open_upload(channel, md, data, part_id, path, kind)
    offset = up.committed_offset
    while offset < len(data):
        reply = await write_chunk(channel, md, up.upload_id, offset, data[offset : offset + chunk])
        offset = reply.committed_offset
    return await resumable_pb.ResumableUploadServiceStub(channel).finish_upload(
        resumable_pb.FinishUploadRequest(
            upload_id=up.upload_id, sha256=hashlib.sha256(data).digest()
        ),
        metadata=md,
    )
