"""Decoding ``SensorData`` records and their timestamps: a fast decoder and the reference one.

This is the cloud's ingest hot path (every record it reads), so it is kept apart
from the record type and its encoder in ``_records``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from actors.codec._pbwire import (
    WIRE_LEN,
    WIRE_VARINT,
    WireError,
    as_int64,
    decode_varint,
    read_len_delimited,
    skip_field,
)
from actors.codec._records import _NS, SensorRecord
from actors.codec._struct_decode import FALLBACK, Bail, decode_struct, fast_input, fast_struct

if TYPE_CHECKING:
    from actors.codec._struct import JsonValue


def decode_timestamp(buf: bytes | memoryview, pos: int, end: int) -> int:
    """Parses a Timestamp body into nanoseconds since the epoch.

    Raises:
        WireError: the bytes are not a valid Timestamp, or its nanos are out of range.
    """
    data = fast_input(buf, pos, end)
    if data is not None:
        try:
            if data is buf:
                return _fast_timestamp(data, pos, end)
            return _fast_timestamp(data, 0, len(data))
        except FALLBACK:
            pass  # the reference decoder gives the result or the exact error
    return _decode_timestamp(buf, pos, end)


def decode_sensor_data(buf: bytes | memoryview) -> SensorRecord:
    """Parses one ``SensorData`` message (without its length prefix).

    Raises:
        WireError: the bytes are not a valid SensorData.
    """
    data = buf if type(buf) is bytes else fast_input(buf, 0, len(buf))
    if data is not None:
        try:
            return _fast_sensor_data(data, 0, len(data))
        except FALLBACK:
            pass  # the reference decoder gives the result or the exact error
    return _decode_sensor_data(buf)


def decode_sensor_payload(buf: bytes) -> tuple[dict[str, JsonValue] | None, bytes | None]:
    """A ``SensorData`` record's data only, ``(struct, binary)``: for readers that need
    no timestamps, such as the simulator's checker (a third of a record's decoding
    is its metadata).

    The metadata's bytes are framed (they lie inside the record) but not decoded,
    so a record whose metadata alone is malformed passes here and fails
    ``decode_sensor_data``.

    Raises:
        WireError: the record's framing or data is not a valid SensorData.
    """
    try:
        _meta_start, _meta_end, kind, start, stop = fast_fields(buf, 0, len(buf))
        if kind == STRUCT:
            return fast_struct(buf, start, stop), None
        if kind == BINARY:
            return None, buf[start:stop]
        return None, None
    except FALLBACK:
        pass  # the reference decoder gives the result or the exact error
    record = _decode_sensor_data(buf)
    return record.struct, record.binary


# --- The fast decoder -------------------------------------------------------------------------
#
# As in ``_struct_decode``: these handle the bytes encoders write (known fields, one-byte
# tags, timestamps of the current era) inline and raise one of ``FALLBACK`` on
# anything else, and the caller then decodes the whole message again with the
# reference decoder below (``_decode_sensor_data`` and the functions after it). A
# fast function returns only after checking that each field lies inside its message.

# The first nine bytes of SensorMetadata's Timestamp fields seen before -> their
# seconds (see ``_fast_metadata``). Readings taken in the same second share them,
# so most records skip the seconds varint. Bounded (emptied when full) so that
# adversarial input cannot grow it without limit.
_TIMESTAMP_HEADS: dict[bytes, int] = {}
_TIMESTAMP_HEADS_LIMIT = 4096

# SensorRecord is a frozen dataclass, so its __init__ sets each field through
# object.__setattr__: with seven fields that costs as much as decoding a small
# reading. The fast decoder makes the same object by setting its slots directly
# (unpacking fails at import if the number of fields changes; a test pins the order).
_new_object = object.__new__
(
    _set_requested,
    _set_received,
    _set_struct,
    _set_binary,
    _set_annotations,
    _set_mime,
    _set_unknown,
) = (SensorRecord.__dict__[f.name].__set__ for f in fields(SensorRecord))


def _fast_sensor_data(buf: bytes, pos: int, end: int) -> SensorRecord:
    meta_start, meta_end, kind, start, stop = fast_fields(buf, pos, end)
    requested = received = mime = 0
    annotations = b""
    if meta_start < meta_end:
        requested, received, annotations, mime = _fast_metadata(buf, meta_start, meta_end)
    record = _new_object(SensorRecord)  # SensorRecord(requested, received, ..., False)
    _set_requested(record, requested)
    _set_received(record, received)
    _set_struct(record, fast_struct(buf, start, stop) if kind == STRUCT else None)
    _set_binary(record, buf[start:stop] if kind == BINARY else None)
    _set_annotations(record, annotations)
    _set_mime(record, mime)
    _set_unknown(record, False)
    return record


# SensorData's data field tags, as ``fast_fields`` reports them (0: neither).
STRUCT = 0x12
BINARY = 0x1A


def fast_fields(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int, int]:
    """SensorData's fields in ``buf[pos:end]``: its metadata's span (empty if
    absent), then its data's tag (``STRUCT``, ``BINARY`` or 0) and span.

    Raises one of ``FALLBACK`` on a field repeated (they merge or replace), a
    field unknown or of the wrong wire type, or one that runs past ``end``.
    """
    meta_start = meta_end = kind = start = stop = 0
    seen_metadata = False
    while pos < end:
        # All three fields are length-delimited: tag, length, payload.
        tag = buf[pos]
        n = buf[pos + 1]
        if n < 0x80:
            field_start = pos + 2
        else:
            n, field_start = decode_varint(buf, pos + 1, end)
        pos = field_start + n
        if pos > end:
            raise Bail
        if tag in (STRUCT, BINARY) and not kind:
            kind, start, stop = tag, field_start, pos
        elif tag == 0x0A and not seen_metadata:  # metadata
            meta_start, meta_end, seen_metadata = field_start, pos, True
        else:
            raise Bail  # a repeated field, an unknown field or a wrong wire type
    return meta_start, meta_end, kind, start, stop


def _fast_metadata(buf: bytes, pos: int, end: int) -> tuple[int, int, bytes, int]:
    requested = received = mime = 0
    annotations = b""
    heads = _TIMESTAMP_HEADS
    while pos < end:
        # Fast lane: a time_requested (0x0A) or time_received (0x12) Timestamp whose
        # first nine bytes (tag, length, 0x08 and five-byte seconds, 0x10) were seen
        # before: they give the seconds, and nanos is the rest, up to the field's end.
        seconds = heads.get(buf[pos : pos + 9])
        if seconds is not None:
            field_end = pos + 2 + buf[pos + 1]
            if field_end > end:
                raise Bail
            tag = buf[pos]
            pos += 9
            # nanos: a varint of at most five bytes (it is under 10**9) ending the
            # field; the loop is _fast_timestamp's, inlined.
            byte = buf[pos]
            nanos = byte & 0x7F
            shift = 7
            while byte >= 0x80:
                if shift == 35:
                    raise Bail
                pos += 1
                byte = buf[pos]
                nanos |= (byte & 0x7F) << shift
                shift += 7
            pos += 1
            if pos != field_end or nanos >= _NS:
                raise Bail
            if tag == 0x0A:
                requested = seconds * _NS + nanos
            else:
                received = seconds * _NS + nanos
            continue
        tag = buf[pos]
        n = buf[pos + 1]
        if tag == 0x18:  # mime_type, a small enum: a one-byte varint
            if n >= 0x80:
                raise Bail
            mime = n
            pos += 2
            continue
        if n < 0x80:
            start = pos + 2
        else:
            n, start = decode_varint(buf, pos + 1, end)
        field_end = start + n
        if field_end > end:
            raise Bail
        if tag == 0x0A:
            requested = _fast_timestamp(buf, start, field_end)
        elif tag == 0x12:
            received = _fast_timestamp(buf, start, field_end)
        elif tag == 0x22:
            annotations = buf[start:field_end]
        else:
            raise Bail
        if tag != 0x22 and start == pos + 2:
            _remember_head(buf, pos, field_end)
        pos = field_end
    if pos != end:
        raise Bail  # a mime_type ran past the end
    return requested, received, annotations, mime


def _remember_head(buf: bytes, pos: int, end: int) -> None:
    """Adds the Timestamp field at ``pos`` to the fast lane if it has the usual layout."""
    # 0x08, a five-byte seconds varint (every second from 1978 to 3058), then nanos.
    if pos + 9 < end and buf[pos + 2] == 0x08 and buf[pos + 8] == 0x10:
        seconds, after = decode_varint(buf, pos + 3, end)
        if after == pos + 8:
            if len(_TIMESTAMP_HEADS) >= _TIMESTAMP_HEADS_LIMIT:
                _TIMESTAMP_HEADS.clear()
            _TIMESTAMP_HEADS[buf[pos : pos + 9]] = seconds


def _fast_timestamp(buf: bytes, pos: int, end: int) -> int:
    seconds = nanos = 0
    while pos < end:
        tag = buf[pos]
        if tag == 0x08:  # seconds: int64
            raw, pos = decode_varint(buf, pos + 1, end)
            seconds = as_int64(raw)
        elif tag == 0x10:  # nanos: under 10**9, so at most five varint bytes
            pos += 1
            byte = buf[pos]
            nanos = byte & 0x7F
            shift = 7
            while byte >= 0x80:
                if shift == 35:
                    raise Bail
                pos += 1
                byte = buf[pos]
                nanos |= (byte & 0x7F) << shift
                shift += 7
            pos += 1
        else:
            raise Bail
    if pos != end or nanos >= _NS:
        raise Bail  # a varint ran past the end, or nanos out of range (the reference says which)
    return seconds * _NS + nanos


# --- The reference decoder --------------------------------------------------------------------


def _decode_sensor_data(buf: bytes | memoryview) -> SensorRecord:
    end = len(buf)
    pos = 0
    times = (0, 0)
    annotations = b""
    mime = 0
    struct: dict[str, JsonValue] | None = None
    binary: bytes | None = None
    unknown = False
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        if tag == 0x0A:
            s, pos = read_len_delimited(buf, pos, end)
            times, annotations, mime = _decode_metadata(buf, s, pos)
        elif tag == 0x12:
            s, pos = read_len_delimited(buf, pos, end)
            struct, binary = decode_struct(buf, s, pos), None
        elif tag == 0x1A:
            s, pos = read_len_delimited(buf, pos, end)
            binary, struct = bytes(buf[s:pos]), None
        elif (tag >> 3) in (1, 2, 3):
            raise WireError(f"SensorData field {tag >> 3} has wire type {tag & 7}", pos)
        else:
            unknown = True
            pos = skip_field(buf, pos, tag & 7, end)
    return SensorRecord(times[0], times[1], struct, binary, annotations, mime, unknown)


def _decode_metadata(
    buf: bytes | memoryview, pos: int, end: int
) -> tuple[tuple[int, int], bytes, int]:
    requested = received = 0
    annotations = b""
    mime = 0
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        field_no, wire = tag >> 3, tag & 7
        if field_no in (1, 2, 4) and wire == WIRE_LEN:
            s, pos = read_len_delimited(buf, pos, end)
            if field_no == 1:
                requested = _decode_timestamp(buf, s, pos)
            elif field_no == 2:
                received = _decode_timestamp(buf, s, pos)
            else:
                annotations = bytes(buf[s:pos])
        elif field_no == 3 and wire == WIRE_VARINT:
            mime, pos = decode_varint(buf, pos, end)
        elif field_no in (1, 2, 3, 4):
            raise WireError(f"SensorMetadata field {field_no} has wire type {wire}", pos)
        else:
            pos = skip_field(buf, pos, wire, end)
    return (requested, received), annotations, mime


def _decode_timestamp(buf: bytes | memoryview, pos: int, end: int) -> int:
    seconds = 0
    nanos = 0
    while pos < end:
        tag, pos = decode_varint(buf, pos, end)
        if tag == 0x08:
            raw, pos = decode_varint(buf, pos, end)
            seconds = as_int64(raw)
        elif tag == 0x10:
            raw, pos = decode_varint(buf, pos, end)
            nanos = as_int64(raw)
        else:
            pos = skip_field(buf, pos, tag & 7, end)
    if not 0 <= nanos < _NS:
        raise WireError(f"Timestamp nanos {nanos} out of range", pos)
    return seconds * _NS + nanos
