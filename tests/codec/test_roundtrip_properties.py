"""Round-trip properties of the codec, checked against protoc's classes where they apply."""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path

import pytest
from google.protobuf.internal.encoder import _VarintBytes
from hypothesis import example, given, settings
from hypothesis import strategies as st

from actors.codec import (
    CaptureFileReader,
    RecordEncoder,
    SensorRecord,
    StructEncoder,
    TruncatedCaptureFile,
    WireError,
    decode_sensor_data,
    decode_struct,
    decode_timestamp,
    decode_varint,
    encode_header,
    encode_timestamp,
    encode_varint,
    recover_prog,
)
from protos.gen.viam.app.datasync import v1 as datasync
from tests.codec import strategies as cst
from tests.codec.fakefs import FaultyFileSystem
from tests.codec.protoc_classes import canon, struct_to_python, timestamp_ns

FAST = settings(max_examples=40, deadline=None)


def _unframe(framed: bytes) -> bytes:
    length, pos = decode_varint(framed, 0)
    assert pos + length == len(framed)
    return framed[pos:]


# --- Struct values ----------------------------------------------------------------------


@FAST
@given(obj=cst.json_objects)
def test_json_values_round_trip_through_struct_and_protoc_reads_the_same(protoc, obj):
    encoder = StructEncoder()
    body = encoder.encode(obj)

    assert encoder.encode(obj) == body  # the key cache changes nothing
    assert canon(decode_struct(body)) == canon(obj)
    assert canon(struct_to_python(protoc.struct_pb2.Struct.FromString(body))) == canon(obj)
    # decode_struct honours start/end inside a larger buffer.
    assert canon(decode_struct(b"\xff\xff" + body + b"\xff", 2, 2 + len(body))) == canon(obj)


@FAST
@given(obj=cst.json_objects)
def test_struct_bytes_serialized_by_protoc_decode_to_the_same_values(protoc, obj):
    message = protoc.struct_pb2.Struct()
    message.update(obj)

    assert canon(decode_struct(message.SerializeToString())) == canon(obj)


@settings(max_examples=20, deadline=None)
@given(char=st.characters(codec="utf-8"), size=st.integers(0, 200_000))
@example(char="\U0001f916", size=200_000)  # 800 KB of 4-byte UTF-8
def test_large_strings_round_trip_through_struct(protoc, char, size):
    obj = {"big": char * size, "k" * size: [char * size]}

    body = StructEncoder().encode(obj)

    assert decode_struct(body) == obj
    assert struct_to_python(protoc.struct_pb2.Struct.FromString(body)) == obj


def test_nan_infinities_and_negative_zero_survive_as_doubles(protoc):
    body = StructEncoder().encode({"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0})

    for decoded in (
        decode_struct(body),
        struct_to_python(protoc.struct_pb2.Struct.FromString(body)),
    ):
        assert math.isnan(decoded["nan"])
        assert decoded["inf"] == math.inf
        assert decoded["-inf"] == -math.inf
        assert decoded["-0"] == 0.0
        assert math.copysign(1.0, decoded["-0"]) == -1.0


@given(integer=st.integers(-(2**53), 2**53))
def test_integers_within_2_53_decode_to_the_exact_same_number(integer):
    assert decode_struct(StructEncoder().encode({"n": integer})) == {"n": float(integer)}
    assert float(integer) == integer


# --- binary payloads and timestamps --------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(payload=cst.payloads, annotations=st.binary(max_size=40))
@example(payload=b"", annotations=b"")
@example(payload=random.Random(0).randbytes(384 * 1024), annotations=b"\x12\x00")
def test_binary_payloads_round_trip_and_protoc_reads_the_same(protoc, payload, annotations):
    # Annotations are opaque bytes to the codec; any bytes must survive, but protoc
    # would validate them, so it only parses records without them.
    encoder = RecordEncoder()
    framed = encoder.binary_prefix(1, 2, len(payload), annotations) + payload

    record = decode_sensor_data(_unframe(framed))

    assert record.binary == payload
    assert record.struct is None
    assert record.annotations == annotations
    plain = _unframe(encoder.binary_prefix(1, 2, len(payload)) + payload)
    assert protoc.datasync.SensorData.FromString(plain).binary == payload


@FAST
@given(ns=cst.timestamps_ns)
def test_timestamp_encoding_is_byte_identical_to_protoc_and_round_trips(protoc, ns):
    expected = protoc.timestamp_pb2.Timestamp()
    expected.FromNanoseconds(ns)

    body = encode_timestamp(ns)

    assert body == expected.SerializeToString()
    assert decode_timestamp(body, 0, len(body)) == ns
    assert timestamp_ns(protoc.timestamp_pb2.Timestamp.FromString(body)) == ns


@FAST
@given(times=st.lists(st.tuples(cst.timestamps_ns, cst.timestamps_ns), min_size=1, max_size=8))
def test_record_timestamps_round_trip_to_the_nanosecond_through_one_encoder(protoc, times):
    # One encoder for all records: its per-second cache must never leak between them.
    encoder = RecordEncoder()
    for requested, received in times:
        body = _unframe(encoder.tabular(requested, received, {}))

        record = decode_sensor_data(body)
        parsed = protoc.datasync.SensorData.FromString(body)

        assert (record.time_requested_ns, record.time_received_ns) == (requested, received)
        assert timestamp_ns(parsed.metadata.time_requested) == requested
        assert timestamp_ns(parsed.metadata.time_received) == received


def test_a_first_timestamp_in_the_second_before_the_epoch_keeps_its_seconds():
    # Regression: the encoder's seconds cache started at -1, so a first reading in
    # 1969-12-31T23:59:59Z was written without its seconds field (as 1970, +1 s).
    for ns in (-1, -500_000_000, -1_000_000_000):
        record = decode_sensor_data(_unframe(RecordEncoder().tabular(ns, ns, {})))

        assert (record.time_requested_ns, record.time_received_ns) == (ns, ns)


# --- varints -----------------------------------------------------------------------------


@given(value=st.integers(0, 2**64 - 1))
def test_varints_match_protobuf_and_round_trip(value):
    encoded = encode_varint(value)

    assert encoded == _VarintBytes(value)
    assert decode_varint(b"\x00" + encoded + b"\x00", 1) == (value, 1 + len(encoded))
    for cut in range(len(encoded)):
        with pytest.raises(WireError):
            decode_varint(encoded[:cut], 0)


# --- truncation and recovery -------------------------------------------------------------


def _small_file(readings: list[cst.ReadingSpec]) -> list[bytes]:
    """The framed pieces of a capture file: header, then one per record."""
    header = datasync.DataCaptureMetadata(
        component_type="rdk:component:sensor", method_name="Readings", tags=["t"]
    )
    encoder = RecordEncoder()
    pieces = [encode_header(header)]
    for r in readings:
        if r.binary is not None:
            pieces.append(
                encoder.binary_prefix(r.requested_ns, r.received_ns, len(r.binary)) + r.binary
            )
        else:
            assert r.struct is not None
            pieces.append(encoder.tabular(r.requested_ns, r.received_ns, r.struct))
    return pieces


def _ends(pieces: list[bytes]) -> list[int]:
    ends, total = [], 0
    for piece in pieces:
        total += len(piece)
        ends.append(total)
    return ends


def _comparable(record: SensorRecord) -> tuple[object, ...]:
    """A record with its Struct in canonical form (NaN equals NaN)."""
    return (
        record.time_requested_ns,
        record.time_received_ns,
        canon(record.struct) if record.struct is not None else None,
        record.binary,
        record.annotations,
    )


def _read_all(path: Path) -> tuple[list[object], int, TruncatedCaptureFile | None]:
    """Records (comparable) read before any error, the reader's good offset, and the error."""
    got: list[object] = []
    with CaptureFileReader(path) as reader:
        try:
            for _, record in reader.records():
                got.append(_comparable(record))
        except TruncatedCaptureFile as exc:
            return got, reader.good_offset, exc
        return got, reader.good_offset, None


@settings(max_examples=12, deadline=None)
@given(readings=st.lists(cst.small_readings, max_size=4))
def test_a_file_cut_at_any_byte_reads_every_complete_record_and_reports_where_it_ends(
    tmp_path_factory, readings
):
    pieces = _small_file(readings)
    data = b"".join(pieces)
    header_end, *record_ends = _ends(pieces)
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "cut.capture"
    path.write_bytes(data)
    full, _, error = _read_all(path)
    assert error is None
    assert len(full) == len(readings)

    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(TruncatedCaptureFile) as raised:
                CaptureFileReader(path)
            assert raised.value.offset == 0
            assert raised.value.path == str(path)
            continue
        complete = sum(1 for end in record_ends if end <= cut)
        intact = record_ends[complete - 1] if complete else header_end

        got, good, error = _read_all(path)

        assert got == full[:complete]
        assert good == intact
        if cut == intact:
            assert error is None
        else:
            assert error is not None
            assert error.offset == intact


@settings(max_examples=12, deadline=None)
@given(readings=st.lists(cst.small_readings, max_size=4))
def test_recovering_a_prog_cut_at_any_byte_keeps_exactly_its_complete_records(
    tmp_path_factory, readings
):
    pieces = _small_file(readings)
    data = b"".join(pieces)
    _, *record_ends = _ends(pieces)
    directory = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    prog = directory / "2026-01-01T00_00_00.000000Z.prog"
    capture = prog.with_suffix(".capture")
    fs = FaultyFileSystem(durable=False)  # contents are under test here, not fsync

    for cut in range(len(data) + 1):
        prog.write_bytes(data[:cut])
        complete = sum(1 for end in record_ends if end <= cut)

        result = recover_prog(prog, fs=fs)

        assert not prog.exists()
        assert result.records == complete
        if complete == 0:
            assert result.path is None
            assert not capture.exists()
            assert (result.kept_bytes, result.dropped_bytes) == (0, cut)
            continue
        kept = record_ends[complete - 1]
        assert result.path == capture
        assert capture.read_bytes() == data[:kept]
        assert (result.kept_bytes, result.dropped_bytes) == (kept, cut - kept)
        assert len(_read_all(capture)[0]) == complete
        capture.unlink()
    assert sorted(directory.iterdir()) == []
