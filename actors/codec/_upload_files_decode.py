"""Decoding the ``UploadFiles`` RPC's messages, and the ``SmallFileWire`` and
``SmallFileResultWire`` rows the decoder builds.

The strict, error-naming parser is most of the codec, so it lives apart from the
grpclib message classes and their encoding in ``_upload_files`` (which import it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeVar

from actors.codec._pbwire import (
    WIRE_FIXED32,
    WIRE_FIXED64,
    WIRE_LEN,
    WIRE_VARINT,
    WireError,
    decode_varint,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_Item = TypeVar("_Item")

_WIRE_NAMES = {
    WIRE_VARINT: "varint",
    WIRE_FIXED64: "fixed64",
    WIRE_LEN: "length-delimited",
    WIRE_FIXED32: "fixed32",
}

# Each message's known fields: number -> (name, wire type), for error messages
# and to refuse a known field sent with another wire type.
_REQUEST_FIELDS = {1: ("files", WIRE_LEN)}
_SMALL_FILE_FIELDS = {
    1: ("identity", WIRE_LEN),
    2: ("data", WIRE_LEN),
    3: ("tags", WIRE_LEN),
    4: ("kind", WIRE_VARINT),
    5: ("upload_metadata", WIRE_LEN),
}
_IDENTITY_FIELDS = {
    1: ("part_id", WIRE_LEN),
    2: ("path", WIRE_LEN),
    3: ("size", WIRE_VARINT),
    4: ("sha256", WIRE_LEN),
}
_RESPONSE_FIELDS = {
    1: ("results", WIRE_LEN),
    2: ("applies_tags", WIRE_VARINT),
    3: ("takes_binary", WIRE_VARINT),
    4: ("takes_files", WIRE_VARINT),
}
_RESULT_FIELDS = {
    1: ("upload_id", WIRE_LEN),
    2: ("file_id", WIRE_LEN),
    3: ("records", WIRE_VARINT),
    4: ("error_code", WIRE_LEN),
    5: ("error", WIRE_LEN),
}


class SmallFileWire(NamedTuple):
    """One ``SmallFile``: its ``FileIdentity`` fields, flattened, its whole bytes, the
    tags the robot adds to its header's, its ``UploadKind`` (0: a capture file) and
    its ``UploadMetadata``, serialized (empty: none), as the cloud parses it."""

    part_id: str
    path: str
    size: int
    sha256: bytes
    data: bytes
    tags: tuple[str, ...] = ()
    kind: int = 0
    metadata: bytes = b""


class SmallFileResultWire(NamedTuple):
    """One ``SmallFileResult``: what the cloud did with one file, in request order."""

    upload_id: str
    file_id: str
    records: int
    error_code: str
    error: str


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


def _decode_repeated(
    buf: bytes,
    name: str,
    fields: Mapping[int, tuple[str, int]],
    decode_item: Callable[[bytes, int, int], _Item],
    flags: dict[int, bool] | None = None,
) -> list[_Item]:
    """The message's repeated message field 1, ``name``; an error's path gains its index.

    ``flags`` maps the numbers of the message's bool fields to their values,
    which it fills in (the last occurrence wins; any non-zero varint is true).
    """
    items: list[_Item] = []
    append = items.append
    pos = 0
    end = len(buf)
    while pos < end:
        tag_pos = pos
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _tag(buf, pos, end)
        if tag == 0x0A:  # field 1, length-delimited
            try:
                start, pos = _span(buf, pos, end, "")
                append(decode_item(buf, start, pos))
            except _Malformed as bad:
                bad.path = f".{name}[{len(items)}]{bad.path}"
                raise
        elif flags is not None and tag & 7 == WIRE_VARINT and tag >> 3 in flags:
            value, pos = _varint(buf, pos, end, f".{fields[tag >> 3][0]}")
            flags[tag >> 3] = value != 0
        else:
            pos = _other(buf, tag, tag_pos, pos, end, fields)
    return items


def _decode_request(buf: bytes) -> list[SmallFileWire]:
    """``UploadFilesRequest.files``."""
    return _decode_repeated(buf, "files", _REQUEST_FIELDS, _decode_small_file)


def _decode_small_file(buf: bytes, pos: int, end: int) -> SmallFileWire:
    """One ``SmallFile`` in ``buf[pos:end]``; ``data`` is the one copy of its bytes."""
    part_id = path = ""
    size = kind = 0
    sha256 = data = metadata = b""
    tags: list[str] = []
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
        elif tag == 0x1A:  # tags, one string per occurrence
            start, pos = _span(buf, pos, end, f".tags[{len(tags)}]")
            try:
                tags.append(buf[start:pos].decode())
            except UnicodeDecodeError as err:
                what = f"invalid UTF-8 ({err.reason})"
                raise _Malformed(f".tags[{len(tags)}]", what, start + err.start) from None
        elif tag == 0x20:  # kind (an enum: any 64-bit varint decodes; the cloud checks it)
            kind, pos = _varint(buf, pos, end, ".kind")
        elif tag == 0x2A:  # upload_metadata: occurrences merge, as concatenated bytes do
            start, pos = _span(buf, pos, end, ".upload_metadata")
            metadata += buf[start:pos]
        else:
            pos = _other(buf, tag, tag_pos, pos, end, _SMALL_FILE_FIELDS)
    return SmallFileWire(part_id, path, size, sha256, data, tuple(tags), kind, metadata)


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


def _decode_response(buf: bytes) -> tuple[list[SmallFileResultWire], bool, bool, bool]:
    """``UploadFilesResponse``'s ``results``, ``applies_tags``, ``takes_binary`` and
    ``takes_files``."""
    flags = {2: False, 3: False, 4: False}
    results = _decode_repeated(buf, "results", _RESPONSE_FIELDS, _decode_result, flags)
    return results, flags[2], flags[3], flags[4]


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
