"""CaptureFileReader and recover_prog: what they accept, what they refuse, and where."""

from __future__ import annotations

import tracemalloc
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.codec import (
    CaptureFileReader,
    CorruptCaptureFile,
    RecordEncoder,
    TruncatedCaptureFile,
    _file,
    decode_sensor_data,
    encode_header,
    encode_varint,
    iter_records,
    recover_prog,
)
from protos.gen.google.protobuf import Any as PbAny
from protos.gen.viam.app.datasync import v1 as datasync
from tests.codec.fakefs import FaultyFileSystem

if TYPE_CHECKING:
    from pathlib import Path

    from actors.codec import SensorRecord

HEADER_MSG = datasync.DataCaptureMetadata(
    component_type="rdk:component:sensor",
    component_name="s",
    method_name="Readings",
    type=datasync.DataType.TABULAR_SENSOR,
    file_extension=".dat",
    tags=["a"],
)
HEADER = encode_header(HEADER_MSG)
PROG = "2026-01-01T00_00_00.000000Z.prog"


def _records(n: int) -> list[bytes]:
    encoder = RecordEncoder()
    return [encoder.tabular(i, i + 1, {"readings": {"i": i}}) for i in range(n)]


def _write(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path


def _drain(reader: CaptureFileReader, into: list[SensorRecord]) -> None:
    """Reads every record into ``into`` (kept when the reader raises part-way)."""
    for _, record in reader.records():
        into.append(record)


def _ends(*parts: bytes) -> list[int]:
    ends, total = [], 0
    for part in parts:
        total += len(part)
        ends.append(total)
    return ends


# --- reading good files ---------------------------------------------------------------------


def test_reader_yields_the_header_and_each_record_with_its_offset(tmp_path):
    records = _records(3)
    path = _write(tmp_path / "f.capture", HEADER, *records)

    with CaptureFileReader(path) as reader:
        got = list(reader.records())
        header, header_end, good = reader.header, reader.header_end, reader.good_offset

    assert header == HEADER_MSG
    assert header_end == len(HEADER)
    assert [offset for offset, _ in got] == _ends(HEADER, *records)[:-1]
    assert [r.struct for _, r in got] == [{"readings": {"i": float(i)}} for i in range(3)]
    assert [(r.time_requested_ns, r.time_received_ns) for _, r in got] == [(0, 1), (1, 2), (2, 3)]
    assert good == path.stat().st_size
    assert [r for _, r in iter_records(path)] == [r for _, r in got]


def test_raw_records_give_each_record_bytes_and_span(tmp_path):
    records = _records(2)
    path = _write(tmp_path / "f.capture", HEADER, *records)
    ends = _ends(HEADER, *records)

    with CaptureFileReader(path) as reader:
        raw = list(reader.raw_records())
        good = reader.good_offset

    assert [(r.offset, r.end) for r in raw] == [(ends[0], ends[1]), (ends[1], ends[2])]
    assert [encode_varint(len(r.body)) + r.body for r in raw] == records
    assert good == ends[-1]


def test_a_header_only_file_has_no_records(tmp_path):
    path = _write(tmp_path / "f.capture", HEADER)

    with CaptureFileReader(path) as reader:
        assert list(reader.records()) == []
        assert reader.good_offset == len(HEADER)


def test_a_reader_of_a_growing_prog_sees_records_appended_after_it_opened(tmp_path):
    first, second = _records(2)
    path = _write(tmp_path / PROG, HEADER, first)

    with CaptureFileReader(path) as reader:
        with path.open("ab") as appender:
            appender.write(second)
        got = [r.struct for _, r in reader.records()]

    assert got == [{"readings": {"i": 0.0}}, {"readings": {"i": 1.0}}]


# --- refusing bad files, naming file and offset -------------------------------------------


def test_an_empty_file_is_truncated_at_offset_zero(tmp_path):
    path = _write(tmp_path / "f.capture")

    with pytest.raises(TruncatedCaptureFile) as raised:
        CaptureFileReader(path)

    assert (raised.value.path, raised.value.offset) == (str(path), 0)


@pytest.mark.parametrize(
    "body",
    [
        b"garbage!",  # wire type 7 does not exist
        b"\xff\xff\xff\xff\xff\xff",  # a varint that never ends
        b'{"json": "not a header"}',  # '{' is a start-group tag
        b"\x0a\x05ab",  # component_type claims 5 bytes, has 2
        b"\x2a\x01x",  # type (an enum, field 5) sent as bytes
        b"\x0a\x02\xff\xfe",  # component_type is not UTF-8
        b"\x00\x01",  # field number 0
        b"\x32\x04\x0a\x05ab",  # a method_parameters key overruns its entry
        b"\x32\x04\x12\x02\x08\x01",  # a parameter's Any has type_url as a varint
        b"\x32\x05\x12\x03\x12\x05x",  # a parameter's Any value overruns
    ],
)
def test_a_complete_garbage_header_is_corrupt_naming_file_and_offset_zero(tmp_path, body):
    path = _write(tmp_path / "f.capture", encode_varint(len(body)), body, *_records(1))

    with pytest.raises(CorruptCaptureFile) as raised:
        CaptureFileReader(path)

    assert (raised.value.path, raised.value.offset) == (str(path), 0)
    assert str(raised.value).startswith(f"{path}: offset 0: ")


def test_a_parameter_entry_without_a_value_reads_as_an_empty_any(tmp_path):
    # Valid protobuf (the value is the default Any); betterproto2 alone gives None,
    # and the header could then not be serialized again for upload.
    body = b"\x32\x06\x0a\x04mode"
    path = _write(tmp_path / "f.capture", encode_varint(len(body)), body)

    with CaptureFileReader(path) as reader:
        header = reader.header

    assert header.method_parameters == {"mode": PbAny()}
    assert bytes(header) == b"\x32\x08\x0a\x04mode\x12\x00"


def test_a_record_longer_than_the_file_is_truncated_at_its_start(tmp_path):
    records = _records(2)
    path = _write(tmp_path / "f.capture", HEADER, *records, encode_varint(1000), b"\x0a\x00")
    intact = _ends(HEADER, *records)[-1]

    with CaptureFileReader(path) as reader:
        got: list[SensorRecord] = []
        with pytest.raises(TruncatedCaptureFile) as raised:
            _drain(reader, got)
        good = reader.good_offset

    assert raised.value.offset == intact == good
    assert "declares 1000 bytes but only 2 remain" in raised.value.reason
    assert len(got) == 2


def test_a_header_longer_than_the_file_is_truncated_at_offset_zero(tmp_path):
    path = _write(tmp_path / "f.capture", encode_varint(500), HEADER[1:])

    with pytest.raises(TruncatedCaptureFile) as raised:
        CaptureFileReader(path)

    assert raised.value.offset == 0


def test_a_record_length_over_the_limit_is_corrupt_not_a_huge_allocation(tmp_path):
    path = _write(tmp_path / "f.capture", HEADER, encode_varint(2**40), b"x")

    with (
        CaptureFileReader(path, max_record_bytes=1 << 20) as reader,
        pytest.raises(CorruptCaptureFile, match="exceeds") as raised,
    ):
        list(reader.records())

    assert raised.value.offset == len(HEADER)


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x00" * 64, "zero-length record"),
        (b"\xff" * 11, "longer than 10 bytes"),
        (encode_varint(3) + b"\x0a\x05a", "not a SensorData"),  # metadata overruns
        (encode_varint(2) + b"\x08\x01", "not a SensorData"),  # metadata sent as a varint
    ],
)
def test_bad_bytes_after_good_records_are_corrupt_at_their_offset(tmp_path, tail, reason):
    records = _records(2)
    path = _write(tmp_path / "f.capture", HEADER, *records, tail)
    intact = _ends(HEADER, *records)[-1]

    with CaptureFileReader(path) as reader:
        got: list[SensorRecord] = []
        with pytest.raises(CorruptCaptureFile, match=reason) as raised:
            _drain(reader, got)
        good = reader.good_offset

    assert raised.value.offset == good == intact
    assert [r.struct for r in got] == [{"readings": {"i": 0.0}}, {"readings": {"i": 1.0}}]


def _framing(
    reader: CaptureFileReader, frames: bool
) -> tuple[list[tuple[int, int, bytes]], object]:
    """Every record's ``(offset, end, body)``, then the error (type, offset, reason) or None,
    and ``good_offset``."""
    got: list[tuple[int, int, bytes]] = []
    error: object = None
    try:
        if frames:
            got.extend(reader.frames())
        else:
            got.extend((r.offset, r.end, r.body) for r in reader.raw_records())
    except (CorruptCaptureFile, TruncatedCaptureFile) as exc:
        error = (type(exc), exc.offset, exc.reason)
    return got, (error, reader.good_offset)


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(0, 6),
    tail=st.binary(max_size=12)
    | st.sampled_from([b"\x00" * 8, b"\xff" * 11, b"\x80", b"\x85\x01", encode_varint(300) + b"x"]),
    where=st.sampled_from(["disk", "memory", "disk-streamed"]),
)
def test_frames_cut_a_file_exactly_as_raw_records_do(tmp_path_factory, count, tail, where):
    # Any file: good records (short and long ones, whose lengths take two bytes), then any tail.
    encoder = RecordEncoder()
    records = [encoder.tabular(i, i + 1, {"readings": {"s": "x" * (i * 40)}}) for i in range(count)]
    data = b"".join((HEADER, *records, tail))
    path = _write(tmp_path_factory.mktemp("f") / "f.capture", data)
    options = {"data": data} if where == "memory" else {}
    limit = 0 if where == "disk-streamed" else _file._WHOLE_READ_BYTES
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_file, "_WHOLE_READ_BYTES", limit)
        with CaptureFileReader(path, max_record_bytes=1000, **options) as reader:
            got = _framing(reader, frames=True)
    with CaptureFileReader(path, max_record_bytes=1000) as reader:
        expected = _framing(reader, frames=False)
    assert got == expected


@pytest.mark.parametrize(
    "tail",
    [b"", b"\x00" * 4, encode_varint(3) + b"\x0a\x05a", encode_varint(2) + b"\x08\x01", b"\x85"],
)
def test_decoded_reads_and_fails_as_records_does(tmp_path, tail):
    path = _write(tmp_path / "f.capture", HEADER, *_records(3), tail)

    def run(read: str) -> tuple[list[object], object, int]:
        with CaptureFileReader(path) as reader:
            got: list[object] = []
            error = None
            try:
                items = (
                    reader.records() if read == "records" else reader.decoded(decode_sensor_data)
                )
                got.extend(items)
            except (CorruptCaptureFile, TruncatedCaptureFile) as exc:
                error = (type(exc), exc.offset, exc.reason)
            return got, error, reader.good_offset

    assert run("decoded") == run("records")


# --- bounded memory -------------------------------------------------------------------------------


def test_the_reader_reads_record_by_record_never_the_whole_file(tmp_path):
    record_bytes = 64 * 1024
    count = 48  # a 3 MiB file, each record 1/48th of it
    encoder = RecordEncoder()
    payload = bytes(range(256)) * (record_bytes // 256)
    framed = encoder.binary_prefix(1, 2, len(payload)) + payload
    path = _write(tmp_path / "big.capture", HEADER, framed * count)
    fs = FaultyFileSystem()
    size = path.stat().st_size

    tracemalloc.start()
    try:
        seen = 0
        with CaptureFileReader(path, fs=fs, max_record_bytes=len(framed)) as reader:
            for _, record in reader.records():
                assert record.binary == payload
                seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert seen == count
    assert fs.read_sizes  # the fake saw the reads
    assert all(0 < n <= len(framed) for n in fs.read_sizes)
    assert sum(n for n in fs.read_sizes) >= size
    assert peak < 8 * len(framed) < size  # a handful of records' worth, never the file


# --- recovery of .prog files ----------------------------------------------------------------------


def test_recovery_cuts_a_zero_filled_tail_and_keeps_every_record(tmp_path):
    records = _records(3)
    prog = _write(tmp_path / PROG, HEADER, *records, b"\x00" * 4096)
    intact = _ends(HEADER, *records)[-1]

    result = recover_prog(prog)

    assert result.path == prog.with_suffix(".capture")
    assert (result.records, result.kept_bytes, result.dropped_bytes) == (3, intact, 4096)
    assert "zero-length" in result.reason
    assert result.path.read_bytes() == HEADER + b"".join(records)
    assert not prog.exists()


def test_recovery_of_a_fully_zero_filled_prog_removes_it(tmp_path):
    prog = _write(tmp_path / PROG, b"\x00" * 4096)

    result = recover_prog(prog)

    assert (result.path, result.records, result.dropped_bytes) == (None, 0, 4096)
    assert list(tmp_path.iterdir()) == []


def test_recovery_keeps_records_before_a_corrupt_one_and_drops_the_rest(tmp_path):
    records = _records(4)
    garbage = encode_varint(3) + b"\x0a\x05a"
    prog = _write(tmp_path / PROG, HEADER, *records[:2], garbage, *records[2:])

    result = recover_prog(prog)

    assert result.path is not None
    assert result.records == 2
    assert result.path.read_bytes() == HEADER + b"".join(records[:2])


def test_recovery_never_overwrites_an_existing_capture(tmp_path):
    prog = _write(tmp_path / PROG, HEADER, *_records(1))
    taken = _write(prog.with_suffix(".capture"), b"other")

    result = recover_prog(prog)

    assert taken.read_bytes() == b"other"
    assert result.path is not None
    assert result.path != taken
    assert result.path.suffix == ".capture"
    assert result.path.read_bytes() == HEADER + _records(1)[0]


def test_recovery_of_a_garbage_header_raises_and_leaves_the_file(tmp_path):
    prog = _write(tmp_path / PROG, encode_varint(8), b"garbage!", *_records(1))
    before = prog.read_bytes()

    with pytest.raises(CorruptCaptureFile) as raised:
        recover_prog(prog)

    assert raised.value.offset == 0
    assert prog.read_bytes() == before
