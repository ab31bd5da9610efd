"""Capture-file messages: the ``SensorData`` record and the ``DataCaptureMetadata`` header.

Records are encoded by hand (the hot path) and decoded by hand (the cloud's
ingest path, in ``_records_decode``); the header is written once per file, so it
uses the generated betterproto2 class. Timestamps are integers of nanoseconds
since the epoch, UTC.
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
    decode_varint,
    encode_int64,
    encode_varint,
    read_len_delimited,
    skip_field,
)
from actors.codec._struct import JsonObject, JsonValue, StructEncoder
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
    try:
        fast = _fast_header(body)
    except (WireError, UnicodeDecodeError):
        fast = None
    return fast if fast is not None else _decode_header(body)


def _decode_header(body: bytes) -> datasync.DataCaptureMetadata:
    """The reference header decoder: the wire checked strictly, then betterproto2's parse."""
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


_DATA_TYPES = {int(t): t for t in datasync.DataType}


def _fast_header(body: bytes) -> datasync.DataCaptureMetadata | None:
    """The header, built with the constructor (~30 µs less than checking the wire and
    betterproto2's parse, per capture file read); None, or a ``WireError`` or
    ``UnicodeDecodeError``, leaves it to them: method parameters, unknown fields or
    enum values, multi-byte tags, bytes out of bounds or not UTF-8.

    Every file a collector writes has the same header with no parameters, and
    both the robot (checking each file before upload) and the cloud read it.
    """
    # Strings by tag byte: 0x0A component_type, 0x12 component_name, 0x22
    # method_name, 0x3A file_extension, 0x52 mime_type; 0x42 tags (repeated).
    strings = {0x0A: "", 0x12: "", 0x22: "", 0x3A: "", 0x52: ""}
    tags: list[str] = []
    data_type = datasync.DataType.UNSPECIFIED
    pos = 0
    end = len(body)
    while pos < end:
        tag = body[pos]
        if tag == 0x28:  # type: a varint
            value, pos = decode_varint(body, pos + 1, end)
            found = _DATA_TYPES.get(value)
            if found is None:
                return None
            data_type = found
            continue
        if tag not in strings and tag != 0x42:
            return None
        n, start = decode_varint(body, pos + 1, end)
        pos = start + n
        if pos > end:
            return None
        text = body[start:pos].decode()
        if tag == 0x42:
            tags.append(text)
        else:
            strings[tag] = text  # a repeated singular field: the last one wins
    return datasync.DataCaptureMetadata(
        component_type=strings[0x0A],
        component_name=strings[0x12],
        method_name=strings[0x22],
        type=data_type,
        file_extension=strings[0x3A],
        tags=tags,
        mime_type=strings[0x52],
    )
