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

The generated betterproto2 classes in ``protos/gen/ferry/sync/v1`` remain the
reference; ``tests/codec/test_upload_files_wire.py`` checks this against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, final

from actors.codec._pbwire import (
    SMALL_LIMIT,
    SMALL_VARINTS,
    WIRE_FIXED32,
    WIRE_FIXED64,
    WIRE_LEN,
    WIRE_VARINT,
    WireError,
    decode_varint,
    encode_varint,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Self

UPLOAD_FILES_PATH = "/ferry.sync.v1.ResumableUploadService/UploadFiles"
"""The RPC's gRPC path, as the generated stub and service base name it."""

_UINT64 = 1 << 64
_WIRE_NAMES = {
    WIRE_VARINT: "varint",
    WIRE_FIXED64: "fixed64",
    WIRE_LEN: "length-delimited",
    WIRE_FIXED32: "fixed32",
}

# Each message's known fields: number -> (name, wire type), for error messages
# and to refuse a known field sent with another wire type.
_REQUEST_FIELDS = {1: ("files", WIRE_LEN)}
_SMALL_FILE_FIELDS = {1: ("identity", WIRE_LEN), 2: ("data", WIRE_LEN)}
_IDENTITY_FIELDS = {
    1: ("part_id", WIRE_LEN),
    2: ("path", WIRE_LEN),
    3: ("size", WIRE_VARINT),
    4: ("sha256", WIRE_LEN),
}
_RESPONSE_FIELDS = {1: ("results", WIRE_LEN)}
_RESULT_FIELDS = {
    1: ("upload_id", WIRE_LEN),
    2: ("file_id", WIRE_LEN),
    3: ("records", WIRE_VARINT),
    4: ("error_code", WIRE_LEN),
    5: ("error", WIRE_LEN),
}


class SmallFileWire(NamedTuple):
    """One ``SmallFile``: its ``FileIdentity`` fields, flattened, and its whole bytes."""

    part_id: str
    path: str
    size: int
    sha256: bytes
    data: bytes


class SmallFileResultWire(NamedTuple):
    """One ``SmallFileResult``: what the cloud did with one file, in request order."""

    upload_id: str
    file_id: str
    records: int
    error_code: str
    error: str


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
    """``ferry.sync.v1.UploadFilesResponse``, as a grpclib message type."""

    results: list[SmallFileResultWire] = field(default_factory=list)

    def SerializeToString(self) -> bytes:  # grpclib's codec protocol
        """The message's protobuf encoding (betterproto2's bytes for the same values).

        Raises:
            ValueError: a record count outside uint64, or a string that is not
                encodable UTF-8.
        """
        return _encode_response(self.results)

    @classmethod
    def FromString(cls, data: bytes) -> Self:  # grpclib's codec protocol
        """Parses any valid protobuf encoding of the message.

        Raises:
            WireError: the bytes are not an ``UploadFilesResponse``; the message
                names the field and the byte offset.
        """
        try:
            return cls(_decode_response(bytes(data)))
        except _Malformed as bad:
            raise bad.error("UploadFilesResponse") from None


# ------------------------------------------------------------------ encoding


def _uint64(value: int, where: str) -> bytes:
    """A uint64 field's varint (values from 16384 up; smaller ones come from the table)."""
    if value < 0 or value >> 64:
        raise ValueError(f"{where}: {value} does not fit in a uint64")
    return encode_varint(value)


def _encode_request(files: Sequence[SmallFileWire]) -> bytes:
    """Two parts per file (its framing and fields, then its data): one join copies all."""
    parts: list[bytes] = []
    append = parts.append
    small = SMALL_VARINTS
    limit = SMALL_LIMIT
    for part_id, path, size, sha256, data in files:
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
        if data:
            n = len(data)
            head += b"\x12" + (small[n] if n < limit else encode_varint(n))
            n += len(head)
            append(b"\x0a" + (small[n] if n < limit else encode_varint(n)) + head)
            append(data)
        else:
            n = len(head)
            append(b"\x0a" + (small[n] if n < limit else encode_varint(n)) + head)
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


# ------------------------------------------------------------------ decoding


class _Malformed(Exception):  # internal: FromString turns it into a WireError
    """Bytes that are not the message: ``path`` grows as it unwinds through the levels."""

    def __init__(self, path: str, what: str, pos: int) -> None:
        super().__init__(what)
        self.path = path
        self.what = what
        self.pos = pos

    def error(self, message: str) -> WireError:
        """The public error, naming the top-level message type, the field and the offset."""
        return WireError(f"{message}{self.path}: {self.what} (offset {self.pos})", self.pos)


def _varint(buf: bytes, pos: int, end: int, path: str, kind: str = "varint") -> tuple[int, int]:
    """A varint at ``pos`` within ``end``, which must fit in 64 bits."""
    try:
        value, new = decode_varint(buf, pos, end)
    except WireError as err:
        what = str(err).replace("varint", kind, 1)  # "truncated tag", "length longer than ..."
        raise _Malformed(path, what, pos) from None
    if value >> 64:
        raise _Malformed(path, f"{kind} over 64 bits", pos)
    return value, new


def _span(buf: bytes, pos: int, end: int, path: str) -> tuple[int, int]:
    """``(start, stop)`` of the length-delimited value whose length prefix is at ``pos``."""
    if pos >= end:
        raise _Malformed(path, "truncated length", pos)
    length = buf[pos]
    start = pos + 1
    if length >= 0x80:  # two bytes inline (lengths up to 16 KiB: every file here)
        if start < end and buf[start] < 0x80:
            length = (length & 0x7F) | buf[start] << 7
            start += 1
        else:
            length, start = _varint(buf, pos, end, path, "length")
    stop = start + length
    if stop > end:
        raise _Malformed(path, f"length {length} exceeds the bytes left ({end - start})", pos)
    return start, stop


def _utf8_error(
    err: UnicodeDecodeError, fields: Mapping[int, tuple[str, int]], number: int, start: int
) -> _Malformed:
    """The error for string field ``number`` whose value at ``start`` is not UTF-8.

    Decoders decode strings inline (a call per field is a tenth of their time)
    and note which field they are decoding, so this can name it.
    """
    return _Malformed(f".{fields[number][0]}", f"invalid UTF-8 ({err.reason})", start + err.start)


def _tag(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A multi-byte tag at ``pos`` (one-byte tags are read inline by the callers)."""
    tag, new = _varint(buf, pos, end, "", "tag")
    if tag > 0xFFFFFFFF:
        raise _Malformed("", f"tag {tag} over 32 bits", pos)
    return tag, new


def _other(
    buf: bytes, tag: int, tag_pos: int, pos: int, end: int, fields: Mapping[int, tuple[str, int]]
) -> int:
    """Handles a tag the fast path did not take; returns the position after its value.

    A known field with another wire type or a malformed tag is an error; an
    unknown field of a valid wire type is skipped.
    """
    number = tag >> 3
    wire_type = tag & 7
    if number == 0:
        raise _Malformed("", "field number 0", tag_pos)
    known = fields.get(number)
    path = f".{known[0]}" if known else f".(field {number})"
    if wire_type in (3, 4):
        what = f"group wire type {wire_type} (deprecated) is not supported"
        raise _Malformed(path, what, tag_pos)
    if wire_type not in _WIRE_NAMES:
        raise _Malformed(path, f"invalid wire type {wire_type}", tag_pos)
    if known and known[1] != wire_type:
        raise _Malformed(path, f"wire type {wire_type}, expected {_WIRE_NAMES[known[1]]}", tag_pos)
    if wire_type == WIRE_VARINT:
        return _varint(buf, pos, end, path)[1]
    if wire_type == WIRE_LEN:
        return _span(buf, pos, end, path)[1]
    size = 8 if wire_type == WIRE_FIXED64 else 4
    if pos + size > end:
        what = f"{_WIRE_NAMES[wire_type]} exceeds the bytes left ({end - pos})"
        raise _Malformed(path, what, pos)
    return pos + size


def _decode_request(buf: bytes) -> list[SmallFileWire]:
    """``UploadFilesRequest.files``; an error's path gains the index of its file."""
    files: list[SmallFileWire] = []
    append = files.append
    pos = 0
    end = len(buf)
    while pos < end:
        tag_pos = pos
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _tag(buf, pos, end)
        if tag == 0x0A:  # files
            try:
                start, pos = _span(buf, pos, end, "")
                append(_decode_small_file(buf, start, pos))
            except _Malformed as bad:
                bad.path = f".files[{len(files)}]{bad.path}"
                raise
        else:
            pos = _other(buf, tag, tag_pos, pos, end, _REQUEST_FIELDS)
    return files


def _decode_small_file(buf: bytes, pos: int, end: int) -> SmallFileWire:
    """One ``SmallFile`` in ``buf[pos:end]``; ``data`` is the one copy of its bytes."""
    part_id = path = ""
    size = 0
    sha256 = data = b""
    while pos < end:
        tag_pos = pos
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _tag(buf, pos, end)
        if tag == 0x0A:  # identity: a repeated occurrence merges into the one before
            start, pos = _span(buf, pos, end, ".identity")
            try:
                part_id, path, size, sha256 = _decode_identity(
                    buf, start, pos, part_id, path, size, sha256
                )
            except _Malformed as bad:
                bad.path = ".identity" + bad.path
                raise
        elif tag == 0x12:  # data
            start, pos = _span(buf, pos, end, ".data")
            data = buf[start:pos]
        else:
            pos = _other(buf, tag, tag_pos, pos, end, _SMALL_FILE_FIELDS)
    return SmallFileWire(part_id, path, size, sha256, data)


def _decode_identity(
    buf: bytes, pos: int, end: int, part_id: str, path: str, size: int, sha256: bytes
) -> tuple[str, str, int, bytes]:
    """``FileIdentity``'s fields, starting from the values of an earlier occurrence."""
    name = start = 0  # the string being decoded, for a UTF-8 error
    try:
        while pos < end:
            tag_pos = pos
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = _tag(buf, pos, end)
            if tag == 0x0A:
                start, pos = _span(buf, pos, end, ".part_id")
                name = 1
                part_id = buf[start:pos].decode()
            elif tag == 0x12:
                start, pos = _span(buf, pos, end, ".path")
                name = 2
                path = buf[start:pos].decode()
            elif tag == 0x18:
                if pos < end and buf[pos] < 0x80:
                    size = buf[pos]
                    pos += 1
                else:
                    size, pos = _varint(buf, pos, end, ".size")
            elif tag == 0x22:
                start, pos = _span(buf, pos, end, ".sha256")
                sha256 = buf[start:pos]
            else:
                pos = _other(buf, tag, tag_pos, pos, end, _IDENTITY_FIELDS)
    except UnicodeDecodeError as err:
        raise _utf8_error(err, _IDENTITY_FIELDS, name, start) from None
    return part_id, path, size, sha256


def _decode_response(buf: bytes) -> list[SmallFileResultWire]:
    """``UploadFilesResponse.results``; an error's path gains the index of its result."""
    results: list[SmallFileResultWire] = []
    append = results.append
    pos = 0
    end = len(buf)
    while pos < end:
        tag_pos = pos
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _tag(buf, pos, end)
        if tag == 0x0A:  # results
            try:
                start, pos = _span(buf, pos, end, "")
                append(_decode_result(buf, start, pos))
            except _Malformed as bad:
                bad.path = f".results[{len(results)}]{bad.path}"
                raise
        else:
            pos = _other(buf, tag, tag_pos, pos, end, _RESPONSE_FIELDS)
    return results


def _decode_result(buf: bytes, pos: int, end: int) -> SmallFileResultWire:
    """One ``SmallFileResult`` in ``buf[pos:end]``."""
    upload_id = file_id = error_code = error = ""
    records = 0
    name = start = 0  # the string being decoded, for a UTF-8 error
    try:
        while pos < end:
            tag_pos = pos
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = _tag(buf, pos, end)
            if tag == 0x0A:
                start, pos = _span(buf, pos, end, ".upload_id")
                name = 1
                upload_id = buf[start:pos].decode()
            elif tag == 0x12:
                start, pos = _span(buf, pos, end, ".file_id")
                name = 2
                file_id = buf[start:pos].decode()
            elif tag == 0x18:
                if pos < end and buf[pos] < 0x80:
                    records = buf[pos]
                    pos += 1
                else:
                    records, pos = _varint(buf, pos, end, ".records")
            elif tag == 0x22:
                start, pos = _span(buf, pos, end, ".error_code")
                name = 4
                error_code = buf[start:pos].decode()
            elif tag == 0x2A:
                start, pos = _span(buf, pos, end, ".error")
                name = 5
                error = buf[start:pos].decode()
            else:
                pos = _other(buf, tag, tag_pos, pos, end, _RESULT_FIELDS)
    except UnicodeDecodeError as err:
        raise _utf8_error(err, _RESULT_FIELDS, name, start) from None
    return SmallFileResultWire(upload_id, file_id, records, error_code, error)
