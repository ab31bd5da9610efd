"""Start-up recovery guarantees: crashed .prog files are finished, corrupt ones kept aside."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.adapters.os_fs import OsFileSystem
from actors.codec import (
    CaptureFileWriter,
    RecordEncoder,
    collector_dir,
    encode_header,
    iter_records,
)
from actors.recovery import CaptureDirLock, CaptureDirLocked, recover_capture_dir
from protos.gen.viam.app.datasync import v1 as datasync

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_763_000_000_000_000_000


def _prog(root: Path, name: str, records: int, tail: bytes = b"") -> Path:
    header = encode_header(
        datasync.DataCaptureMetadata(
            component_type="rdk:component:sensor",
            component_name=name,
            method_name="Readings",
            type=datasync.DataType.TABULAR_SENSOR,
        )
    )
    writer = CaptureFileWriter.create(
        collector_dir(root, "rdk:component:sensor", name, "Readings"), T0, header
    )
    enc = RecordEncoder()
    for i in range(records):
        writer.append(enc.tabular(T0 + i, T0 + i, {"readings": {"i": i}}))
    writer.flush()
    writer.close_unfinished()
    with open(writer.path, "ab") as f:
        f.write(tail)
    return writer.path


def test_crashed_prog_keeps_every_complete_record_and_becomes_capture(tmp_path: Path):
    prog = _prog(tmp_path, "s", 50, tail=b"\x40\x0a\x02")  # a torn 64-byte record
    report = recover_capture_dir(tmp_path, OsFileSystem())
    assert not prog.exists()
    [capture] = report.recovered
    assert [rec.struct["readings"]["i"] for _, rec in iter_records(capture)] == list(range(50))
    assert report.records == 50
    assert report.dropped_bytes == 3


def test_prog_without_a_complete_record_is_removed(tmp_path: Path):
    prog = _prog(tmp_path, "empty", 0)
    report = recover_capture_dir(tmp_path, OsFileSystem())
    assert not prog.exists()
    assert report.removed_empty == 1
    assert not report.recovered


def test_unreadable_header_moves_the_file_to_failed_with_a_reason(tmp_path: Path):
    directory = collector_dir(tmp_path, "rdk:component:sensor", "bad", "Readings")
    directory.mkdir(parents=True)
    prog = directory / "2026-01-01T00_00_00.000000Z.prog"
    prog.write_bytes(b"\x04\x0b\x0c\x0d\x0e" + b"\x00" * 10)
    report = recover_capture_dir(tmp_path, OsFileSystem())
    [failed] = report.failed
    assert failed == tmp_path / "failed" / prog.relative_to(tmp_path)
    assert failed.read_bytes().startswith(b"\x04\x0b")  # kept byte for byte, never lost
    reason = failed.with_name(failed.name + ".reason").read_text()
    assert "header" in reason


def test_files_already_in_failed_are_left_alone(tmp_path: Path):
    _prog(tmp_path / "failed", "old", 3)
    report = recover_capture_dir(tmp_path, OsFileSystem())
    assert not report.recovered
    assert not report.failed
    assert list((tmp_path / "failed").rglob("*.prog"))


def test_a_second_agent_cannot_take_a_locked_capture_dir(tmp_path: Path):
    first = CaptureDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(CaptureDirLocked, match="in use by another Ferry agent"):
            CaptureDirLock(tmp_path).acquire()
    finally:
        first.release()
    again = CaptureDirLock(tmp_path)
    again.acquire()
    again.release()
