"""The fast decoders agree with the reference decoders: value for value, error for error.

``decode_struct``, ``decode_sensor_data`` and ``decode_timestamp`` try a fast decoder
first and fall back to the reference (field-by-field) decoder on anything unusual.
These tests pin down that the fast decoder handles everything Ferry writes, and
that on any other bytes (mutated, truncated, random) the public functions return
exactly what the reference decoder returns, or raise its exact error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.codec import (
    RecordEncoder,
    SensorRecord,
    StructEncoder,
    WireError,
    _records,
    _records_decode,
    _struct_decode,
    decode_header,
    decode_sensor_data,
    decode_sensor_payload,
    decode_struct,
    decode_timestamp,
    decode_varint,
    encode_header,
    encode_timestamp,
)
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.viam.app.datasync import v1 as datasync
from tests.codec import strategies as cst

FAST = settings(max_examples=60, deadline=None)


def exact(value: Any) -> Any:
    """A comparable form that keeps every difference: types, key order, NaN bits."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, Mapping):
        return ("dict", tuple((exact(k), exact(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(exact(v) for v in value))
    if isinstance(value, tuple):
        return ("tuple", tuple(exact(v) for v in value))
    if isinstance(value, SensorRecord):
        return (
            "record",
            value.time_requested_ns,
            value.time_received_ns,
            exact(value.struct),
            value.binary,
            value.annotations,
            value.mime_type,
            value.unknown_fields,
        )
    if isinstance(value, bytes):
        return ("bytes", value)
    if isinstance(value, int):
        return ("int", value)
    raise AssertionError(f"unexpected {type(value).__name__}")


def outcome(decode: Callable[..., Any], *args: Any) -> Any:
    """What ``decode(*args)`` gives: its exact value, or its error's type, message and offset."""
    try:
        return ("ok", exact(decode(*args)))
    except (WireError, IndexError, ValueError) as exc:
        return ("error", type(exc), str(exc), getattr(exc, "pos", None))


def _unframe(framed: bytes) -> bytes:
    length, pos = decode_varint(framed, 0)
    assert pos + length == len(framed)
    return framed[pos:]


def _struct_agrees(body: bytes) -> None:
    assert outcome(decode_struct, body) == outcome(
        _struct_decode._decode_struct, body, 0, len(body)
    )


def _record_agrees(body: bytes) -> None:
    assert outcome(decode_sensor_data, body) == outcome(_records_decode._decode_sensor_data, body)
    _payload_agrees(body)


def _payload(record: SensorRecord) -> tuple[Any, Any]:
    return record.struct, record.binary


def _payload_agrees(body: bytes) -> None:
    """``decode_sensor_payload`` gives the reference's data, or fails as it does; it
    may pass a record whose metadata alone is bad: then its data is the reference's
    for the same record without the metadata field."""
    reference = outcome(lambda b: _payload(_records_decode._decode_sensor_data(b)), body)
    got = outcome(decode_sensor_payload, body)
    if reference[0] == "ok" or got[0] == "error":
        assert got == reference
        return
    meta_start, meta_end, *_ = _records_decode.fast_fields(body, 0, len(body))
    tag = next(
        p
        for p in range(meta_start - 1, -1, -1)
        if body[p] == 0x0A and decode_varint(body, p + 1) == (meta_end - meta_start, meta_start)
    )
    without = body[:tag] + body[meta_end:]
    assert got == outcome(lambda b: _payload(_records_decode._decode_sensor_data(b)), without)


# --- what Ferry writes takes the fast path -------------------------------------------------------


@FAST
@given(obj=cst.readings_objects)
def test_the_fast_struct_decoder_handles_every_struct_ferry_writes(obj):
    body = StructEncoder().encode(obj)
    reference = exact(_struct_decode._decode_struct(body, 0, len(body)))

    # Called directly, so a fallback would raise here instead of hiding in decode_struct.
    first = _struct_decode.fast_struct(body, 0, len(body))
    again = _struct_decode.fast_struct(body, 0, len(body))  # the entry caches are warm now

    assert exact(first) == exact(again) == reference


@FAST
@given(
    obj=cst.readings_objects,
    times=st.tuples(cst.timestamps_ns, cst.timestamps_ns),
    annotations=st.binary(max_size=40),
)
def test_the_fast_record_decoder_handles_every_tabular_record_ferry_writes(obj, times, annotations):
    body = _unframe(RecordEncoder().tabular(times[0], times[1], obj, annotations))
    reference = exact(_records_decode._decode_sensor_data(body))

    first = _records_decode._fast_sensor_data(body, 0, len(body))
    again = _records_decode._fast_sensor_data(body, 0, len(body))

    assert exact(first) == exact(again) == reference


@FAST
@given(payload=cst.small_payloads, times=st.tuples(cst.timestamps_ns, cst.timestamps_ns))
def test_the_fast_record_decoder_handles_every_binary_record_ferry_writes(payload, times):
    framed = RecordEncoder().binary_prefix(times[0], times[1], len(payload)) + payload
    body = _unframe(framed)

    record = _records_decode._fast_sensor_data(body, 0, len(body))

    assert exact(record) == exact(_records_decode._decode_sensor_data(body))
    assert record.binary == payload


def test_fast_records_equal_what_the_dataclass_constructor_makes():
    # The fast decoder sets SensorRecord's slots directly, in field order.
    assert [f.name for f in fields(SensorRecord)] == [
        "time_requested_ns",
        "time_received_ns",
        "struct",
        "binary",
        "annotations",
        "mime_type",
        "unknown_fields",
    ]
    meta = b"\x0a\x02\x08\x01" + b"\x12\x02\x08\x02" + b"\x18\x03" + b"\x22\x01a"
    struct_body = StructEncoder().encode({"k": 1.5})
    body = b"\x0a" + bytes([len(meta)]) + meta + b"\x12" + bytes([len(struct_body)]) + struct_body

    record = _records_decode._fast_sensor_data(body, 0, len(body))

    expected = SensorRecord(1_000_000_000, 2_000_000_000, {"k": 1.5}, None, b"a", 3, False)
    assert record == expected
    assert repr(record) == repr(expected)
    assert record.unknown_fields is False
    with pytest.raises(AttributeError):
        record.mime_type = 4  # type: ignore[misc] # still frozen


# --- anything else decodes exactly as the reference decoder decodes it ---------------------------


@settings(max_examples=200, deadline=None)
@given(obj=cst.readings_objects, edits=cst.edits)
@example(obj={"readings": {"x": 1.0, "ok": True, "s": "a"}}, edits=[("cut", 9, 0)])
def test_mutated_struct_bytes_decode_or_fail_exactly_as_the_reference_decoder(obj, edits):
    body = StructEncoder().encode(obj)
    decode_struct(body)  # warm the fast lanes with the valid entries first
    mutated = cst.mutate(body, edits)

    _struct_agrees(mutated)
    # Inside a larger buffer too (bytes past the end must not be read as the message's).
    padded = b"\x0a" + mutated + b"\x0a\x0b\x0a"
    assert outcome(decode_struct, padded, 1, 1 + len(mutated)) == outcome(
        _struct_decode._decode_struct, padded, 1, 1 + len(mutated)
    )


@settings(max_examples=200, deadline=None)
@given(
    obj=cst.readings_objects,
    times=st.tuples(cst.timestamps_ns, cst.timestamps_ns),
    edits=cst.edits,
)
def test_mutated_records_decode_or_fail_exactly_as_the_reference_decoder(obj, times, edits):
    body = _unframe(RecordEncoder().tabular(times[0], times[1], obj))
    decode_sensor_data(body)  # warm the fast lanes with the valid fields first

    _record_agrees(cst.mutate(body, edits))


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
@example(data=b"\x0a\x02\x0a\x00")  # an entry with a key and no value
@example(data=b"\x0a\x00")  # an empty entry
@example(data=b"\x0a\x0b\x0a\x01x\x12\x06\x11\x00\x00\x00\x00")  # a double cut short
@example(data=b"\x0a\x07\x0a\x01x\x12\x02\x20\x80")  # a bool varint cut short
@example(data=b"\x0a\x06\x0a\x01x\x12\x01\x08")  # null_value without its varint
def test_arbitrary_bytes_decode_or_fail_exactly_as_the_reference_decoder(data):
    _struct_agrees(data)
    _record_agrees(data)
    assert outcome(decode_timestamp, data, 0, len(data)) == outcome(
        _records_decode._decode_timestamp, data, 0, len(data)
    )


def _typical_bodies() -> list[bytes]:
    encoder = RecordEncoder()
    t = 1_763_000_000_987_654_321  # nanos is a five-byte varint
    numbers = {"readings": {"x": 0.01, "y": -9.81, "z": 0.5, "seq": 17}}
    mixed = {
        "readings": {
            "state": "idle",
            "ok": True,
            "joints": [0.1, -1.5, "a"],
            "pose": {"frame": "world", "x": 1.0, "none": None},
        }
    }
    # Metadata ending in mime_type (Ferry never writes it; older rdk releases did).
    stamp = encode_timestamp(t)
    meta = b"\x0a" + bytes([len(stamp)]) + stamp + b"\x12" + bytes([len(stamp)]) + stamp
    meta += b"\x18\x02"
    struct_body = StructEncoder().encode({"k": 1.0})
    with_mime = b"\x0a" + bytes([len(meta)]) + meta + b"\x12" + bytes([len(struct_body)])
    return [
        _unframe(encoder.tabular(t, t + 1_000_000, numbers)),
        _unframe(encoder.tabular(t, t, mixed, b"\x12\x00")),
        with_mime + struct_body,
    ]


# Replacement bytes: every tag and short length, continuation bytes, the extremes.
_REPLACEMENTS = (*range(0x30), 0x7F, 0x80, 0x81, 0x8A, 0xC0, 0xFF)


def _message_spans(body: bytes) -> list[tuple[int, int]]:
    """Where a SensorData's nested messages lie: timestamps, Struct, nested Structs."""
    spans = []
    pos = 0
    while pos < len(body):
        tag, pos = decode_varint(body, pos)
        length, start = decode_varint(body, pos)
        pos = start + length
        if tag == 0x0A:  # metadata: its timestamps
            inner = start
            while inner < pos:
                field, inner = decode_varint(body, inner)
                if field == 0x18:
                    inner = decode_varint(body, inner)[1]
                    continue
                size, ts_start = decode_varint(body, inner)
                inner = ts_start + size
                if field in (0x0A, 0x12):
                    spans.append((ts_start, inner))
        elif tag == 0x12:  # the Struct, and each entry's nested Struct
            spans.append((start, pos))
            entry = start
            while entry < pos:
                size, entry_start = decode_varint(body, entry + 1)
                entry = entry_start + size
                key_len = body[entry_start + 1]
                value = entry_start + 2 + key_len  # the value's tag
                size, value_start = decode_varint(body, value + 1)
                if body[value_start] == 0x2A:
                    size, nested = decode_varint(body, value_start + 1)
                    spans.append((nested, nested + size))
    return spans


@pytest.mark.parametrize("index", range(3))
def test_every_cut_and_single_byte_change_of_typical_records_decodes_as_the_reference(index):
    """The fast lanes' shortcuts (cached entries and timestamps) never skip a check.

    The caches are warm, so changed bytes next to cached ones take the fast lanes;
    messages are cut both by slicing and by a smaller ``end`` inside the full buffer.
    """
    body = _typical_bodies()[index]
    assert exact(decode_sensor_data(body)) == exact(
        _records_decode._fast_sensor_data(body, 0, len(body))
    )
    spans = _message_spans(body)
    assert len(spans) >= 3

    for start, end in spans:
        for cut in range(start, end + 1):
            assert outcome(decode_struct, body, start, cut) == outcome(
                _struct_decode._decode_struct, body, start, cut
            )
            assert outcome(decode_timestamp, body, start, cut) == outcome(
                _records_decode._decode_timestamp, body, start, cut
            )
    for i in range(len(body) + 1):
        _record_agrees(body[:i])
        _record_agrees(body[:i] + body[i + 1 :])
        for byte in {*_REPLACEMENTS, body[i - 1] - 1, body[i - 1] + 1} - {-1, 256}:
            _record_agrees(body[: i - 1] + bytes([byte]) + body[i:])


def test_bytes_after_a_nested_message_are_not_read_as_part_of_it():
    entry = StructEncoder().encode({"x": 1.0})
    decode_struct(entry)  # the entry is in the number lane now
    # A struct_value of length 0, then the cached entry's bytes: as Value fields
    # they are field 1 with the wrong wire type, not the nested Struct's entries.
    value = b"\x2a\x00" + entry
    body = b"\x0a" + bytes([len(value) + 5]) + b"\x0a\x01k\x12" + bytes([len(value)]) + value

    with pytest.raises(WireError, match="Value field 1 has wire type 2"):
        decode_struct(body)
    _struct_agrees(body)
    # And a cached entry cut by ``end`` is not read past it.
    with pytest.raises(WireError):
        decode_struct(entry + entry, 0, len(entry) + 3)


def test_a_mime_type_cut_by_the_end_of_its_metadata_is_not_read_from_the_next_field():
    stamp = encode_timestamp(1_763_000_000_987_654_321)
    meta = b"\x0a" + bytes([len(stamp)]) + stamp + b"\x18"  # mime_type's varint is missing
    struct_body = StructEncoder().encode({"k": 1.0})
    # The byte after the metadata is the struct field's tag, 0x12: a valid varint.
    body = b"\x0a" + bytes([len(meta)]) + meta + b"\x12" + bytes([len(struct_body)]) + struct_body
    decode_sensor_data(b"\x0a" + bytes([len(meta) - 1]) + meta[:-1])  # warm the timestamp lane

    with pytest.raises(WireError, match="truncated varint"):
        decode_sensor_data(body)
    _record_agrees(body)


@pytest.mark.parametrize(
    ("body", "expected", "fast"),
    [
        # An unknown field before an entry is skipped.
        (b"\x10\x05" + StructEncoder().encode({"a": 1.0}), {"a": 1.0}, False),
        # The value before the key.
        (b"\x0a\x0e\x12\x09\x11" + struct.pack("<d", 2.0) + b"\x0a\x01a", {"a": 2.0}, False),
        # A tag written as a two-byte varint (0x0A as 0x8A 0x00).
        (b"\x8a\x00\x02\x0a\x00", {"": None}, False),
        # A Value holding two kinds: the last wins.
        (b"\x0a\x0b\x0a\x01a\x12\x06\x20\x01\x1a\x02hi", {"a": "hi"}, False),
        # The same key twice: the last wins, in the first one's place.
        (
            StructEncoder().encode({"a": 1.0, "b": 2.0}) + StructEncoder().encode({"a": True}),
            {"a": True, "b": 2.0},
            True,
        ),
    ],
)
def test_unusual_but_valid_structs_decode_as_the_reference_decoder_does(body, expected, fast):
    assert decode_struct(body) == expected
    _struct_agrees(body)
    if fast:
        assert _struct_decode.fast_struct(body, 0, len(body)) == expected
    else:
        with pytest.raises(_struct_decode.FALLBACK):
            _struct_decode.fast_struct(body, 0, len(body))


def test_unusual_records_decode_through_the_reference_decoder():
    # Seconds before 1970 (a ten-byte varint) and an unknown field.
    body = b"\x0a\x0d\x0a\x0b" + b"\x08" + b"\xff" * 9 + b"\x01" + b"\xa0\x06\x07"

    record = decode_sensor_data(body)

    assert record.time_requested_ns == -1_000_000_000
    assert record.unknown_fields
    _record_agrees(body)


# --- inputs other than bytes ---------------------------------------------------------------------


def test_memoryview_and_bytearray_inputs_decode_as_bytes_do():
    obj = {"readings": {"x": 1.5, "s": "é", "l": [True, None]}}
    body = StructEncoder().encode(obj)
    framed = RecordEncoder().tabular(5, 6, obj)
    record_body = _unframe(framed)
    stamp = encode_timestamp(-1_500_000_001)

    for wrap in (memoryview, bytearray):
        assert decode_struct(wrap(b"\xff" + body + b"\xff"), 1, 1 + len(body)) == obj
        assert decode_sensor_data(wrap(record_body)) == decode_sensor_data(record_body)
        assert decode_timestamp(wrap(b"\xff" + stamp), 1, 1 + len(stamp)) == -1_500_000_001
    with pytest.raises(WireError) as raised:
        decode_struct(memoryview(body[:-1]))
    with pytest.raises(WireError) as expected:
        _struct_decode._decode_struct(body[:-1], 0, len(body) - 1)
    assert (str(raised.value), raised.value.pos) == (str(expected.value), expected.value.pos)


# --- the caches stay bounded ---------------------------------------------------------------------


def test_the_fast_lane_caches_stay_bounded_and_correct(monkeypatch):
    monkeypatch.setattr(_struct_decode, "_ENTRIES_LIMIT", 8)
    monkeypatch.setattr(_records_decode, "_TIMESTAMP_HEADS_LIMIT", 4)
    # Earlier tests may have cached these very entries: start from empty caches.
    for cache in (
        _struct_decode._NUMBER_ENTRIES,
        _struct_decode._CONSTANT_ENTRIES,
        _struct_decode._STRUCT_ENTRIES,
        _records_decode._TIMESTAMP_HEADS,
    ):
        cache.clear()
    encoder = RecordEncoder()
    for i in range(100):
        t = (1_700_000_000 + i) * 1_000_000_000 + 123_456_789
        obj = {f"r{i}": {f"n{i}": float(i), f"s{i}": f"v{i}", f"b{i}": i % 2 == 0}}
        body = _unframe(encoder.tabular(t, t, obj))

        record = decode_sensor_data(body)

        assert record.struct == obj
        assert record.time_requested_ns == t
        assert len(_struct_decode._NUMBER_ENTRIES) <= 8
        assert len(_struct_decode._CONSTANT_ENTRIES) <= 8
        assert len(_struct_decode._STRUCT_ENTRIES) <= 8
        assert len(_records_decode._TIMESTAMP_HEADS) <= 4


# --- headers --------------------------------------------------------------------------------------


def _header_outcome(decode: Callable[[bytes], Any], body: bytes) -> Any:
    """The header ``decode`` gives, as its fields and its bytes again, or its error."""
    try:
        header = decode(body)
    except WireError as exc:
        return ("error", str(exc), exc.pos)
    return ("ok", header, bytes(header), repr(header))


def _header_agrees(body: bytes) -> None:
    assert _header_outcome(decode_header, body) == _header_outcome(_records._decode_header, body)


def _header_bytes(spec: cst.HeaderSpec, with_params: bool) -> bytes:
    header = datasync.DataCaptureMetadata(
        component_type=spec.component_type,
        component_name=spec.component_name,
        method_name=spec.method_name,
        type=datasync.DataType(spec.data_type),
        method_parameters=(
            {k: PbAny(type_url="type.googleapis.com/x", value=b"v") for k in spec.params}
            if with_params
            else {}
        ),
        file_extension=spec.file_extension,
        tags=list(spec.tags),
        mime_type=spec.mime_type,
    )
    return _unframe(encode_header(header))


@FAST
@given(spec=cst.headers, with_params=st.booleans())
def test_headers_decode_as_the_reference_decoder_does(spec, with_params):
    _header_agrees(_header_bytes(spec, with_params))


@settings(max_examples=300, deadline=None)
@given(spec=cst.headers, edits=cst.edits)
@example(spec=cst.HeaderSpec("a", "b", "c", 2, {}, ".dat", ("t",), ""), edits=[("set", 0, 0x0B)])
def test_mutated_headers_decode_or_fail_exactly_as_the_reference_decoder(spec, edits):
    _header_agrees(cst.mutate(_header_bytes(spec, False), edits))


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x01a\x0a\x01b",  # a repeated singular field: the last one wins
        b"\x28\x07",  # an enum value DataType does not name
        b"\x28\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a negative enum value
        b"\x0a\x02\xff\xfe",  # not UTF-8
        b"\x0a\x05ab",  # cut short
        b"\x42\x01a\x42\x00\x42\x01b",  # tags, one empty
        b"\x58\x01",  # an unknown field (11, varint)
        b"\x8a\x01\x00",  # a field number needing a two-byte tag
    ],
)
def test_unusual_headers_decode_or_fail_as_the_reference_decoder_does(body):
    _header_agrees(body)


def test_a_usual_header_takes_the_fast_decoder():
    body = _header_bytes(
        cst.HeaderSpec("rdk:component:sensor", "s", "Readings", 2, {}, ".dat", ("a",), ""), False
    )
    assert _records._fast_header(body) == _records._decode_header(body)
