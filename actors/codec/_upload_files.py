"""A hand-written protobuf codec for the ``UploadFiles`` RPC's request and reply.

``ferry.sync.v1.ResumableUploadService/UploadFiles`` carries batches of about
a hundred small capture files. betterproto2 spends ~70 µs per file building,
serializing and parsing those messages (15-20 % of either side's CPU while a
backlog drains); this module does the same work in a few µs per file.

The classes here are grpclib message types (``FromString`` and
``SerializeToString``, as grpclib's ``ProtoCodec`` calls them):

- encoding is byte-identical to betterproto2's for the same values (proto3:
  default scalars omitted, fields in number order; a file's ``identity`` is
  always present, as the uploader always sets it);
- decoding accepts any valid encoding of these messages: fields in any order,
  repeated occurrences of a singular field (the last one wins; repeated
  ``identity`` messages merge, as the protobuf spec says), unknown fields of
  every wire type skipped. Malformed bytes raise ``WireError`` (a ``ValueError``)
  naming the message, the field and the byte offset, e.g.
  ``UploadFilesRequest.files[3].identity.size: wire type 2, expected varint
  (offset 1234)``.

Decoding, with the ``SmallFileWire`` and ``SmallFileResultWire`` rows it builds,
is in ``_upload_files_decode``. The generated betterproto2 classes in
``protos/gen/ferry/sync/v1`` remain the reference;
``tests/codec/test_upload_files_wire.py`` checks this against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

from actors.codec._pbwire import SMALL_LIMIT, SMALL_VARINTS, encode_varint
from actors.codec._upload_files_decode import (
    SmallFileResultWire,
    SmallFileWire,
    _decode_request,
    _decode_response,
    _Malformed,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Self

UPLOAD_FILES_PATH = "/ferry.sync.v1.ResumableUploadService/UploadFiles"
"""The RPC's gRPC path, as the generated stub and service base name it."""

_UINT64 = 1 << 64


@final
@dataclass(slots=True)
class UploadFilesRequestWire:
    """``ferry.sync.v1.UploadFilesRequest``, as a grpclib message type.

    Example::

        request = UploadFilesRequestWire([SmallFileWire("part", "a.capture", 3, sha, b"abc")])
        assert UploadFilesRequestWire.FromString(request.SerializeToString()) == request
    """

    files: list[SmallFileWire] = field(default_factory=list)

    def SerializeToString(self) -> bytes:  # grpclib's codec protocol
        """The message's protobuf encoding (betterproto2's bytes for the same values).

        Raises:
            ValueError: a size outside uint64, or a string that is not encodable UTF-8.
        """
        return _encode_request(self.files)

    @classmethod
    def FromString(cls, data: bytes) -> Self:  # grpclib's codec protocol
        """Parses any valid protobuf encoding of the message.

        Raises:
            WireError: the bytes are not an ``UploadFilesRequest``; the message
                names the field and the byte offset.
        """
        try:
            return cls(_decode_request(bytes(data)))
        except _Malformed as bad:
            raise bad.error("UploadFilesRequest") from None


@final
@dataclass(slots=True)
class UploadFilesResponseWire:
    """``ferry.sync.v1.UploadFilesResponse``, as a grpclib message type.

    ``applies_tags``: the server stores ``SmallFile.tags`` (older servers skip them);
    ``takes_binary``: it stores binary capture files (older ones refuse them);
    ``takes_files``: it stores arbitrary files (older ones refuse them).
    """

    results: list[SmallFileResultWire] = field(default_factory=list)
    applies_tags: bool = False
    takes_binary: bool = False
    takes_files: bool = False

    def SerializeToString(self) -> bytes:  # grpclib's codec protocol
        """The message's protobuf encoding (betterproto2's bytes for the same values).

        Raises:
            ValueError: a record count outside uint64, or a string that is not
                encodable UTF-8.
        """
        body = _encode_response(self.results)
        if self.applies_tags:
            body += b"\x10\x01"
        if self.takes_binary:
            body += b"\x18\x01"
        if self.takes_files:
            body += b"\x20\x01"
        return body

    @classmethod
    def FromString(cls, data: bytes) -> Self:  # grpclib's codec protocol
        """Parses any valid protobuf encoding of the message.

        Raises:
            WireError: the bytes are not an ``UploadFilesResponse``; the message
                names the field and the byte offset.
        """
        try:
            return cls(*_decode_response(bytes(data)))
        except _Malformed as bad:
            raise bad.error("UploadFilesResponse") from None


# ------------------------------------------------------------------ encoding


def _uint64(value: int, where: str) -> bytes:
    """A uint64 field's varint (values from 16384 up; smaller ones come from the table)."""
    if value < 0 or value >> 64:
        raise ValueError(f"{where}: {value} does not fit in a uint64")
    return encode_varint(value)


def _encode_request(files: Sequence[SmallFileWire]) -> bytes:
    """Two parts per file (its framing and fields, then its data, then its tags, kind
    and metadata, if any): one join copies all."""
    parts: list[bytes] = []
    append = parts.append
    small = SMALL_VARINTS
    limit = SMALL_LIMIT
    for part_id, path, size, sha256, data, tags, kind, metadata in files:
        ident = b""  # FileIdentity's fields; tens of bytes
        if part_id:
            raw = part_id.encode()
            n = len(raw)
            ident = b"\x0a" + (small[n] if n < limit else encode_varint(n)) + raw
        if path:
            raw = path.encode()
            n = len(raw)
            ident += b"\x12" + (small[n] if n < limit else encode_varint(n)) + raw
        if size:
            ident += b"\x18" + (
                small[size] if 0 <= size < limit else _uint64(size, "FileIdentity.size")
            )
        if sha256:
            n = len(sha256)
            ident += b"\x22" + (small[n] if n < limit else encode_varint(n)) + sha256
        n = len(ident)
        head = b"\x0a" + (small[n] if n < limit else encode_varint(n)) + ident
        tail = b""  # field 3, after the data: each tag is one occurrence
        for tag in tags:
            raw = tag.encode()
            n = len(raw)
            tail += b"\x1a" + (small[n] if n < limit else encode_varint(n)) + raw
        if kind:
            tail += b"\x20" + (small[kind] if 0 <= kind < limit else _uint64(kind, "kind"))
        if metadata:
            n = len(metadata)
            tail += b"\x2a" + (small[n] if n < limit else encode_varint(n)) + metadata
        if data:
            n = len(data)
            head += b"\x12" + (small[n] if n < limit else encode_varint(n))
            n += len(head) + len(tail)
            append(b"\x0a" + (small[n] if n < limit else encode_varint(n)) + head)
            append(data)
        else:
            head += tail
            tail = b""
            n = len(head)
            append(b"\x0a" + (small[n] if n < limit else encode_varint(n)) + head)
        if tail:
            append(tail)
    return b"".join(parts)


def _encode_response(results: Sequence[SmallFileResultWire]) -> bytes:
    """One part per result; results are short, so each is built whole."""
    parts: list[bytes] = []
    append = parts.append
    small = SMALL_VARINTS
    limit = SMALL_LIMIT
    for upload_id, file_id, records, error_code, error in results:
        body = b""
        if upload_id:
            raw = upload_id.encode()
            n = len(raw)
            body = b"\x0a" + (small[n] if n < limit else encode_varint(n)) + raw
        if file_id:
            raw = file_id.encode()
            n = len(raw)
            body += b"\x12" + (small[n] if n < limit else encode_varint(n)) + raw
        if records:
            body += b"\x18" + (
                small[records]
                if 0 <= records < limit
                else _uint64(records, "SmallFileResult.records")
            )
        if error_code:
            raw = error_code.encode()
            n = len(raw)
            body += b"\x22" + (small[n] if n < limit else encode_varint(n)) + raw
        if error:
            raw = error.encode()
            n = len(raw)
            body += b"\x2a" + (small[n] if n < limit else encode_varint(n)) + raw
        n = len(body)
        append(b"\x0a" + (small[n] if n < limit else encode_varint(n)) + body)
    return b"".join(parts)
