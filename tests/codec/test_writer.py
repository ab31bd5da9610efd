"""CaptureFileWriter and StructEncoder: what is written, under faults, and what is refused."""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.adapters.os_fs import OsFileSystem
from actors.codec import (
    CaptureFileReader,
    CaptureFileWriter,
    RecordEncoder,
    StructEncodeError,
    StructEncoder,
    decode_struct,
    encode_header,
    file_stem,
    recover_prog,
)
from protos.gen.viam.app.datasync import v1 as datasync
from tests.codec.fakefs import FaultyFileSystem

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import FileSystem

WALL_NS = 1_787_000_000_123_456_789
HEADER = encode_header(
    datasync.DataCaptureMetadata(
        component_type="rdk:component:sensor",
        component_name="s",
        method_name="Readings",
        type=datasync.DataType.TABULAR_SENSOR,
        file_extension=".dat",
    )
)


def _records(n: int, *, size: int = 40) -> list[bytes]:
    encoder = RecordEncoder()
    return [encoder.tabular(i, i + 1, {"readings": {"i": i, "pad": "x" * size}}) for i in range(n)]


def _indices(path: Path) -> list[int]:
    """The ``i`` of every record in a finished file, in order (reading it fully)."""
    with CaptureFileReader(path) as reader:
        out = []
        for _, record in reader.records():
            assert record.struct is not None
            readings = record.struct["readings"]
            assert isinstance(readings, dict)
            out.append(int(readings["i"]))  # type: ignore[arg-type] # a number by construction
        assert reader.good_offset == path.stat().st_size
        return out


# --- StructEncoder: what a Struct cannot hold ---------------------------------------------


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("reading", "path", "words"),
    [
        ({"readings": {"bad": _Opaque()}}, "$.readings.bad", "_Opaque is not JSON-like"),
        ({"readings": {"ok": 1, "list": [1, b"raw"]}}, "$.readings.list[1]", "bytes"),
        ({"readings": {"deep": [{"x": [None, {1, 2}]}]}}, "$.readings.deep[0].x[1]", "set"),
        ({"readings": {1: "v"}}, "$.readings", "map key 1 is int"),
        ({"readings": {"big": 10**400}}, "$.readings.big", "too large for a double"),
        ({"readings": {"s": "\ud800"}}, "$.readings.s", "lone surrogate"),
        ({"readings": {"\udcff": 1}}, "$.readings", "lone surrogate"),
        ({"readings": {"d": Decimal("1.5")}}, "$.readings.d", "Decimal"),
        ({"docommand_output": {"b": bytearray(b"x")}}, "$.docommand_output.b", "bytearray"),
    ],
)
def test_non_json_values_raise_struct_encode_error_naming_their_path(reading, path, words):
    with pytest.raises(StructEncodeError) as raised:
        StructEncoder().encode(reading)

    message = str(raised.value)
    assert message.startswith(path + ":"), message
    assert words in message


def test_a_reading_that_is_not_an_object_raises_naming_the_root():
    with pytest.raises(StructEncodeError, match=r"^\$: list is not a JSON object"):
        StructEncoder().encode([1, 2])  # type: ignore[arg-type] # the point of the test


def test_an_unencodable_reading_leaves_the_writer_untouched(tmp_path):
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    encoder = RecordEncoder()

    with pytest.raises(StructEncodeError):
        writer.append(encoder.tabular(1, 2, {"readings": {"x": object()}}))
    writer.append(encoder.tabular(1, 2, {"readings": {"i": 0}}))

    assert _indices(writer.finish()) == [0]


class _Mode(str, enum.Enum):  # noqa: UP042 # str() of this mixin is 'Mode.AUTO': the case under test
    AUTO = "auto"


class _Level(enum.IntEnum):
    HIGH = 3


class _Key(enum.StrEnum):
    TEMP = "temp_c"


def test_subclasses_of_json_types_encode_as_their_plain_values():
    # Like json.dumps: a str-Enum is its string, an IntEnum its number.
    obj = {
        "mode": _Mode.AUTO,
        "key": _Key.TEMP,
        "level": _Level.HIGH,
        "half": Fraction(1, 2),
        _Key.TEMP: 21.5,
        _Mode.AUTO: [_Mode.AUTO],
    }

    got = decode_struct(StructEncoder().encode(obj))

    assert got == {
        "mode": "auto",
        "key": "temp_c",
        "level": 3.0,
        "half": 0.5,
        "temp_c": 21.5,
        "auto": ["auto"],
    }
    assert all(type(k) is str for k in got)


# --- names: never overwrite -----------------------------------------------------------------


def test_a_new_file_is_named_after_its_creation_time_and_is_private(tmp_path):
    directory = tmp_path / "rdk_component_sensor" / "s" / "Readings"

    writer = CaptureFileWriter.create(directory, WALL_NS, HEADER)

    assert writer.path == directory / (file_stem(WALL_NS) + ".prog")
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0
    final = writer.finish()
    assert final == directory / (file_stem(WALL_NS) + ".capture")
    assert not writer.path.exists()


@pytest.mark.parametrize("second_ns", [WALL_NS, WALL_NS - 789 + 999])
def test_two_files_in_one_microsecond_get_distinct_names_and_both_survive(tmp_path, second_ns):
    first = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    second = CaptureFileWriter.create(tmp_path, second_ns, HEADER)
    a, b = _records(2)
    first.append(a)
    second.append(b)

    paths = {first.finish(), second.finish()}

    assert len(paths) == 2
    assert sorted(_indices(p)[0] for p in paths) == [0, 1]
    assert second.path.name == file_stem(WALL_NS + 1000) + ".prog"


@pytest.mark.parametrize("existing_ext", [".capture", ".prog"])
def test_an_existing_file_with_the_same_name_is_never_overwritten(tmp_path, existing_ext):
    existing = tmp_path / (file_stem(WALL_NS) + existing_ext)
    existing.write_bytes(b"someone else's bytes")

    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    writer.append(_records(1)[0])
    final = writer.finish()

    assert existing.read_bytes() == b"someone else's bytes"
    assert final != existing
    assert final.name == file_stem(WALL_NS + 1000) + ".capture"
    assert _indices(final) == [0]


def test_finish_refuses_to_overwrite_a_capture_file_that_appeared_meanwhile(tmp_path):
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    writer.append(_records(1)[0])
    intruder = writer.path.with_suffix(".capture")
    intruder.write_bytes(b"intruder")

    with pytest.raises(FileExistsError):
        writer.finish()

    assert intruder.read_bytes() == b"intruder"
    assert writer.path.read_bytes() == HEADER + _records(1)[0]


# --- buffering and finishing ------------------------------------------------------------------


def test_records_are_buffered_until_flush_bytes_and_size_counts_them(tmp_path):
    records = _records(3)
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, flush_bytes=10_000)

    for r in records:
        writer.append(r)

    assert writer.path.stat().st_size == 0
    assert writer.written == 0
    assert writer.size == len(HEADER) + sum(map(len, records))
    assert writer.records == 3
    writer.flush()
    assert writer.written == writer.size == writer.path.stat().st_size


def test_finish_is_idempotent(tmp_path):
    fs = FaultyFileSystem()
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, fs=fs)
    writer.append(_records(1)[0])
    final = writer.finish()
    contents = final.read_bytes()
    calls = (fs.write_calls, fs.fsync_dir_calls)

    assert writer.finish() == final
    assert writer.finish() == final

    assert final.read_bytes() == contents
    assert (fs.write_calls, fs.fsync_dir_calls) == calls
    assert sorted(tmp_path.iterdir()) == [final]


def test_append_after_finish_raises_instead_of_losing_the_record(tmp_path):
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    writer.append(_records(1)[0])
    final = writer.finish()

    with pytest.raises(ValueError, match="closed"):
        writer.append(_records(2)[1])
    with pytest.raises(ValueError, match="closed"):
        writer.append_parts(b"\x00")

    assert _indices(final) == [0]


def test_a_prog_closed_unfinished_recovers_with_every_flushed_record(tmp_path):
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER)
    for r in _records(4):
        writer.append(r)
    writer.flush()
    writer.close_unfinished()

    result = recover_prog(writer.path)

    assert result.path is not None
    assert _indices(result.path) == [0, 1, 2, 3]


def test_binary_records_written_in_parts_equal_the_concatenation(tmp_path):
    payload = os.urandom(5000)
    encoder = RecordEncoder()
    prefix = encoder.binary_prefix(1, 2, len(payload))
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, flush_bytes=1000)

    writer.append_parts(prefix, memoryview(payload))
    final = writer.finish()

    assert final.read_bytes() == HEADER + prefix + payload
    with CaptureFileReader(final) as reader:
        assert [r.binary for _, r in reader.records()] == [payload]


# --- faults: ENOSPC and short writes ------------------------------------------------------------


def test_after_enospc_the_file_is_a_prefix_and_finish_writes_each_record_once(tmp_path):
    records = _records(6)
    intended = HEADER + b"".join(records)
    # flush_bytes=1: every append writes. Write 1 is header + record 0, write 2 is
    # record 1, and write 3 (record 2) finds the disk full.
    fs = FaultyFileSystem(fail_writes={3})
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, fs=fs, flush_bytes=1)
    writer.append(records[0])
    writer.append(records[1])

    with pytest.raises(OSError, match="No space") as raised:
        writer.append(records[2])  # buffered all the same: not to be appended again

    assert raised.value.errno == errno.ENOSPC
    on_disk = writer.path.read_bytes()
    assert intended.startswith(on_disk)
    assert on_disk == HEADER + records[0] + records[1]
    fs.heal()
    for r in records[3:]:
        writer.append(r)
    final = writer.finish()
    assert final.read_bytes() == intended
    assert _indices(final) == [0, 1, 2, 3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 12),
    fail_writes=st.sets(st.integers(1, 30), max_size=10),
    max_write=st.none() | st.integers(1, 200),
    flush_bytes=st.integers(1, 600),
)
def test_under_any_write_faults_the_file_stays_a_prefix_and_ends_complete(
    tmp_path_factory, n, fail_writes, max_write, flush_bytes
):
    records = _records(n, size=17)
    intended = HEADER + b"".join(records)
    directory = tmp_path_factory.mktemp("faults")
    fs = FaultyFileSystem(fail_writes=fail_writes, max_write=max_write, durable=False)
    writer = CaptureFileWriter.create(directory, WALL_NS, HEADER, fs=fs, flush_bytes=flush_bytes)

    errors: list[OSError] = []
    for r in records:
        try:
            writer.append(r)  # appended exactly once, even when the write fails
        except OSError as exc:
            errors.append(exc)
        assert intended.startswith(writer.path.read_bytes())
    for _ in range(len(fail_writes) + 1):
        try:
            final = writer.finish()
            break
        except OSError:
            assert intended.startswith(writer.path.read_bytes())
    else:
        pytest.fail("finish() never succeeded")

    assert final.read_bytes() == intended
    assert _indices(final) == list(range(n))
    assert all(e.errno == errno.ENOSPC for e in errors)


def test_after_a_failed_fsync_the_unsynced_records_are_written_again_not_lost(tmp_path):
    """Linux drops the pages of a failed writeback and the next fsync succeeds: a writer
    that simply retried would finish a file without those records. Ferry's cuts the
    file back to its last good fsync and writes them again, each exactly once."""
    records = _records(6)
    fs = FaultyFileSystem(fail_fsyncs={2})
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, fs=fs)
    writer.append(records[0])
    writer.sync()  # fsync 1: header and record 0 are durable
    writer.append(records[1])
    writer.append(records[2])
    with pytest.raises(OSError, match="Input/output"):
        writer.sync()  # fsync 2 fails: records 1 and 2 are gone from the disk
    assert writer.path.read_bytes() == HEADER + records[0]
    writer.append(records[3])
    writer.sync()
    assert writer.path.read_bytes() == HEADER + b"".join(records[:4])
    for r in records[4:]:
        writer.append(r)
    final = writer.finish()
    assert _indices(final) == [0, 1, 2, 3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 10),
    fail_fsyncs=st.sets(st.integers(1, 12), max_size=6),
    sync_every=st.integers(1, 4),
)
def test_under_any_fsync_failures_the_finished_file_holds_every_record_once(
    tmp_path_factory, n, fail_fsyncs, sync_every
):
    records = _records(n, size=17)
    fs = FaultyFileSystem(fail_fsyncs=fail_fsyncs)
    directory = tmp_path_factory.mktemp("fsyncs")
    writer = CaptureFileWriter.create(directory, WALL_NS, HEADER, fs=fs, flush_bytes=1)
    for i, r in enumerate(records):
        writer.append(r)
        if i % sync_every == 0:
            with contextlib.suppress(OSError):
                writer.sync()
    for _ in range(len(fail_fsyncs) + 1):
        try:
            final = writer.finish()
            break
        except OSError:
            continue
    else:
        pytest.fail("finish() never succeeded")
    assert final.read_bytes() == HEADER + b"".join(records)


class _RecordingFileSystem:
    """The real file system, logging each fsync, rename and directory fsync in order."""

    def __init__(self) -> None:
        self._os = OsFileSystem()
        self.log: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._os, name)

    def create_new(self, path: Path) -> object:
        inner = self._os.create_new(path)
        log = self.log

        class _File:
            def write(self, data: bytes | memoryview) -> int:
                return inner.write(data)

            def fsync(self) -> None:
                log.append(f"fsync {path.suffix}")
                inner.fsync()

            def close(self) -> None:
                inner.close()

        return _File()

    def rename(self, src: Path, dst: Path) -> None:
        self.log.append(f"rename {src.suffix} -> {dst.suffix}")
        self._os.rename(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self.log.append("fsync_dir " + ",".join(sorted(p.suffix for p in path.iterdir())))
        self._os.fsync_dir(path)


def test_a_file_finished_at_once_makes_its_prog_name_durable_before_the_rename(tmp_path):
    """A camera's one-reading file: data fsynced, the ``.prog``'s name fsynced, renamed,
    the ``.capture``'s name fsynced. Without the first directory fsync a power cut
    between the rename and the last one would undo both entries, and the file with them."""
    fs = _RecordingFileSystem()
    writer = CaptureFileWriter.create(tmp_path / "cam", WALL_NS, HEADER, fs=fs)  # type: ignore[arg-type]
    writer.append(_records(1)[0])
    fs.log.clear()  # (creating the collector's directory fsynced its parent)
    writer.finish()
    assert fs.log == [
        "fsync .prog",
        "fsync_dir .prog",
        "rename .prog -> .capture",
        "fsync_dir .capture",
    ]


def test_finish_after_a_failed_directory_fsync_completes_the_rename(tmp_path):
    # fsync_dir calls: 1 = sync() after the data, 2 = after the rename.
    fs = FaultyFileSystem(fail_fsync_dirs={2})
    writer = CaptureFileWriter.create(tmp_path, WALL_NS, HEADER, fs=fs)
    writer.append(_records(1)[0])

    with pytest.raises(OSError, match="Input/output"):
        writer.finish()
    final = writer.finish()

    assert final == writer.path.with_suffix(".capture")
    assert _indices(final) == [0]
    assert fs.fsync_dir_calls == 3  # the rename was made durable on the retry
    assert sorted(tmp_path.iterdir()) == [final]


def test_the_fake_file_system_without_faults_writes_what_the_real_one_does(tmp_path):
    records = _records(5)
    outputs = []
    for name, fs in (("real", OsFileSystem()), ("fake", FaultyFileSystem())):
        typed: FileSystem = fs
        writer = CaptureFileWriter.create(
            tmp_path / name, WALL_NS, HEADER, fs=typed, flush_bytes=50
        )
        for r in records:
            writer.append(r)
        outputs.append(writer.finish().read_bytes())

    assert outputs[0] == outputs[1] == HEADER + b"".join(records)
