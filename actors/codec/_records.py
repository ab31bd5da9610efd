"""Capture-file messages: the ``SensorData`` record and the ``DataCaptureMetadata`` header.

Records are encoded by hand (the hot path) and decoded by hand (the cloud's
ingest path); the header is written once per file, so it uses the generated
betterproto2 class. Timestamps are integers of nanoseconds since the epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from actors.codec._pbwire import (
    SMALL_LIMIT,
    SMALL_VARINTS,
    WIRE_LEN,
    WIRE_VARINT,
    WireError,
    as_int64,
    decode_varint,
    encode_int64,
    encode_varint,
    read_len_delimited,
    skip_field,
)
from actors.codec._struct import JsonObject, JsonValue, StructEncoder, decode_struct
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.viam.app.datasync import v1 as datasync

_NS = 1_000_000_000


def encode_timestamp(ns: int) -> bytes:
    """Serializes a ``google.protobuf.Timestamp`` body for ``ns`` since the epoch."""
    seconds, nanos = divmod(ns, _NS)
    out = b""
    if seconds:
        out = b"\x08" + encode_int64(seconds)
    if nanos:
        out += b"\x10" + encode_varint(nanos)
    return out


def decode_timestamp(buf: bytes | memoryview, pos: int, end: int) -> int:
    """Parses a Timestamp body into nanoseconds since the epoch."""
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


@final
@dataclass(frozen=True, slots=True)
class SensorRecord:
    """A decoded ``SensorData``: one reading with its timestamps.

    Exactly one of ``struct`` (tabular) and ``binary`` is set, except for a record
    that carries neither, which Viam's format allows and Ferry never writes.
    ``annotations`` is the serialized ``viam.app.data.v1.Annotations``, kept as
    bytes because only the cloud needs to look inside.
    """

    time_requested_ns: int
    time_received_ns: int
    struct: dict[str, JsonValue] | None = None
    binary: bytes | None = None
    annotations: bytes = b""
    mime_type: int = 0
    unknown_fields: bool = field(default=False, compare=False)


@final
class RecordEncoder:
    """Turns readings into length-delimited ``SensorData`` bytes, ready to append.

    Example::

        enc = RecordEncoder()
        framed = enc.tabular(t0_ns, t1_ns, {"readings": {"temp_c": 21.5}})
    """

    def __init__(self) -> None:
        self._struct = StructEncoder()
        # The cache starts at second 0, whose field is empty (proto3 omits zeros). A
        # sentinel such as -1 would be a real second (1969-12-31T23:59:59Z) and
        # would encode it without its seconds field.
        self._seconds = 0
        self._seconds_field = b""

    def _timestamp(self, ns: int) -> bytes:
        # Readings within one second share their seconds field: encode it once.
        seconds, nanos = divmod(ns, _NS)
        if seconds != self._seconds:
            self._seconds = seconds
            self._seconds_field = b"\x08" + encode_int64(seconds) if seconds else b""
        if nanos:
            return self._seconds_field + b"\x10" + encode_varint(nanos)
        return self._seconds_field

    def _metadata(self, requested_ns: int, received_ns: int, annotations: bytes) -> bytes:
        req = self._timestamp(requested_ns)
        rec = self._timestamp(received_ns)
        # Timestamps are at most 16 bytes: their lengths are single-byte varints.
        out = b"\x0a" + SMALL_VARINTS[len(req)] + req + b"\x12" + SMALL_VARINTS[len(rec)] + rec
        if annotations:
            out += b"\x22" + encode_varint(len(annotations)) + annotations
        return out

    def tabular(
        self,
        time_requested_ns: int,
        time_received_ns: int,
        data: JsonObject,
        annotations: bytes = b"",
    ) -> bytes:
        """One framed tabular record (varint length + SensorData with ``struct``)."""
        meta = self._metadata(time_requested_ns, time_received_ns, annotations)
        body = self._struct.encode(data)
        n = len(body)
        record = (
            b"\x0a"
            + encode_varint(len(meta))
            + meta
            + b"\x12"
            + (SMALL_VARINTS[n] if n < SMALL_LIMIT else encode_varint(n))
            + body
        )
        n = len(record)
        return (SMALL_VARINTS[n] if n < SMALL_LIMIT else encode_varint(n)) + record

    def binary_prefix(
        self,
        time_requested_ns: int,
        time_received_ns: int,
        payload_len: int,
        annotations: bytes = b"",
    ) -> bytes:
        """Everything of a framed binary record that precedes its payload.

        Writing ``prefix`` then the payload gives the framed record, without
        copying a large payload into a new buffer.
        """
        meta = self._metadata(time_requested_ns, time_received_ns, annotations)
        head = b"\x0a" + encode_varint(len(meta)) + meta + b"\x1a" + encode_varint(payload_len)
        return encode_varint(len(head) + payload_len) + head


def decode_sensor_data(buf: bytes | memoryview) -> SensorRecord:
    """Parses one ``SensorData`` message (without its length prefix).

    Raises:
        WireError: the bytes are not a valid SensorData.
    """
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
                requested = decode_timestamp(buf, s, pos)
            elif field_no == 2:
                received = decode_timestamp(buf, s, pos)
            else:
                annotations = bytes(buf[s:pos])
        elif field_no == 3 and wire == WIRE_VARINT:
            mime, pos = decode_varint(buf, pos, end)
        elif field_no in (1, 2, 3, 4):
            raise WireError(f"SensorMetadata field {field_no} has wire type {wire}", pos)
        else:
            pos = skip_field(buf, pos, wire, end)
    return (requested, received), annotations, mime


def encode_header(message: datasync.DataCaptureMetadata) -> bytes:
    """Serializes a header, framed (varint length first) as it goes on disk."""
    body = bytes(message)
    return encode_varint(len(body)) + body


@dataclass(frozen=True, slots=True)
class _Wire:
    """The wire type each known field of a message must have; other fields are skipped."""

    strings: frozenset[int] = frozenset()  # length-delimited, UTF-8
    varints: frozenset[int] = frozenset()
    messages: tuple[tuple[int, _Wire], ...] = ()  # length-delimited, checked in turn
    blobs: frozenset[int] = frozenset()  # length-delimited, any bytes


# DataCaptureMetadata's fields and the wire type each must have (spec §3.1), down
# into method_parameters: map entries (key=1, value=2) holding an Any (type_url=1, value=2).
_ANY = _Wire(strings=frozenset({1}), blobs=frozenset({2}))
_PARAM_ENTRY = _Wire(strings=frozenset({1}), messages=((2, _ANY),))
_HEADER = _Wire(
    strings=frozenset({1, 2, 4, 7, 8, 10}), varints=frozenset({5}), messages=((6, _PARAM_ENTRY),)
)


def _check_wire(body: bytes, pos: int, end: int, wire_types: _Wire) -> None:
    """Walks a message's fields strictly: betterproto2 accepts malformed bytes.

    Raises:
        WireError: a length runs past the end, a known field has the wrong wire
            type, a string is not UTF-8, or the wire type is unsupported.
    """
    nested = dict(wire_types.messages)
    while pos < end:
        tag, field_pos = decode_varint(body, pos, end)
        field_no, wire = tag >> 3, tag & 7
        if field_no == 0:
            raise WireError("field number 0", pos)
        if field_no in wire_types.strings or field_no in nested or field_no in wire_types.blobs:
            if wire != WIRE_LEN:
                raise WireError(f"header field {field_no} has wire type {wire}", pos)
            start, stop = read_len_delimited(body, field_pos, end)
            if field_no in wire_types.strings:
                try:
                    body[start:stop].decode()
                except UnicodeDecodeError:
                    raise WireError(f"header field {field_no} is not UTF-8", start) from None
            elif field_no in nested:
                _check_wire(body, start, stop, nested[field_no])
            pos = stop
        elif field_no in wire_types.varints and wire != WIRE_VARINT:
            raise WireError(f"header field {field_no} has wire type {wire}", pos)
        else:
            pos = skip_field(body, field_pos, wire, end)


def decode_header(body: bytes) -> datasync.DataCaptureMetadata:
    """Parses header bytes (without the length prefix), strictly.

    Raises:
        WireError: the bytes are not a valid DataCaptureMetadata.
    """
    _check_wire(body, 0, len(body), _HEADER)
    try:
        header = datasync.DataCaptureMetadata.parse(body)
    except Exception as exc:  # betterproto2 raises assorted errors on bad input
        raise WireError(f"header is not a DataCaptureMetadata: {exc}", 0) from None
    params = header.method_parameters
    for key in [k for k, v in params.items() if v is None]:
        # A map entry without its value holds the default Any; betterproto2 says None,
        # which would fail when the header is serialized again for upload.
        params[key] = PbAny()
    return header
