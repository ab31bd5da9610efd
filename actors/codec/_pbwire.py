"""Protobuf wire-format primitives: varints, tags and field skipping.

Hand-written because the capture hot path cannot afford a generic message
library (see docs/performance.md); the generated betterproto2 classes remain the
reference the tests check these against.
"""

from __future__ import annotations

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_LEN = 2
WIRE_FIXED32 = 5

_MAX_VARINT_BYTES = 10
_UINT64 = 1 << 64

# Encoded varints for 0..16383, the lengths nearly every record uses. A constant
# table, not a cache: it never changes after import. Hot paths index it directly
# (``SMALL_VARINTS[n] if n < SMALL_LIMIT else encode_varint(n)``) to skip a call.
SMALL_LIMIT = 1 << 14
_SMALL = SMALL_VARINTS = tuple(
    bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7]) for n in range(1 << 14)
)


class WireError(ValueError):
    """Bytes that are not valid protobuf wire format; ``pos`` is where it went wrong."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def encode_varint(value: int) -> bytes:
    """Encodes a non-negative integer (< 2**64) as a base-128 varint.

    Negative int64 values must be passed as ``value + 2**64`` (two's complement),
    which is how protobuf encodes them.
    """
    if value < 16384:
        if value < 0:
            raise ValueError(f"varint must be non-negative, got {value}")
        return _SMALL[value]
    if value < 1 << 35:  # timestamps' nanos and seconds: no loop
        if value < 1 << 21:
            return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
        if value < 1 << 28:
            return bytes(
                (
                    value & 0x7F | 0x80,
                    value >> 7 & 0x7F | 0x80,
                    value >> 14 & 0x7F | 0x80,
                    value >> 21,
                )
            )
        return bytes(
            (
                value & 0x7F | 0x80,
                value >> 7 & 0x7F | 0x80,
                value >> 14 & 0x7F | 0x80,
                value >> 21 & 0x7F | 0x80,
                value >> 28,
            )
        )
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_int64(value: int) -> bytes:
    """Encodes a signed int64 field value (negative values take ten bytes)."""
    return encode_varint(value + _UINT64 if value < 0 else value)


def decode_varint(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """Decodes a varint at ``pos``; returns ``(value, next_pos)``.

    Raises:
        WireError: the varint runs past ``end`` or is longer than ten bytes.
    """
    limit = len(buf) if end is None else end
    if pos < limit:
        byte = buf[pos]
        if byte < 0x80:  # one byte: tags and short lengths, nearly every varint
            return byte, pos + 1
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= limit:
            raise WireError("truncated varint", start)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise WireError("varint longer than 10 bytes", start)


def as_int64(value: int) -> int:
    """Reinterprets a decoded 64-bit varint as a signed int64."""
    return value - _UINT64 if value >= 1 << 63 else value


def skip_field(buf: bytes | memoryview, pos: int, wire_type: int, end: int) -> int:
    """Skips one field value of ``wire_type`` at ``pos``; returns the position after it."""
    if wire_type == WIRE_VARINT:
        return decode_varint(buf, pos, end)[1]
    if wire_type == WIRE_FIXED64:
        new = pos + 8
    elif wire_type == WIRE_LEN:
        length, pos = decode_varint(buf, pos, end)
        new = pos + length
    elif wire_type == WIRE_FIXED32:
        new = pos + 4
    else:
        raise WireError(f"unsupported wire type {wire_type}", pos)
    if new > end:
        raise WireError("field runs past the end of its message", pos)
    return new


def read_len_delimited(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    """Reads a length prefix at ``pos``; returns ``(start, stop)`` of the payload."""
    length, start = decode_varint(buf, pos, end)
    stop = start + length
    if stop > end:
        raise WireError("length-delimited field runs past the end of its message", pos)
    return start, stop
