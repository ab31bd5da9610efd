"""Start-up recovery guarantees: crashed .prog files are finished, corrupt ones kept aside."""

from __future__ import annotations

import errno
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


class _FlakyDisk:
    """The real file system, with the first ``fail`` directory fsyncs (or every one of
    them, and every rename, with ``broken``) failing with EIO."""

    def __init__(self, *, fail: int = 0, broken: bool = False) -> None:
        self._os = OsFileSystem()
        self.fail = fail
        self.broken = broken

    def __getattr__(self, name: str) -> object:
        return getattr(self._os, name)

    def fsync_dir(self, path: Path) -> None:
        if self.broken or self.fail > 0:
            self.fail -= 1
            raise OSError(errno.EIO, "Input/output error", str(path))
        self._os.fsync_dir(path)

    def rename(self, src: Path, dst: Path) -> None:
        if self.broken:
            raise OSError(errno.EIO, "Input/output error", str(src))
        self._os.rename(src, dst)


def test_a_failed_directory_fsync_is_retried_and_recovery_goes_on(tmp_path: Path):
    """A disk error must not stop the agent's start (the simulator found it did): the
    directory fsync after the rename is tried again, and the file is recovered."""
    prog = _prog(tmp_path, "s", 5)
    report = recover_capture_dir(tmp_path, _FlakyDisk(fail=2))  # type: ignore[arg-type]
    assert not prog.exists()
    assert len(report.recovered) == 1
    assert report.left == []


def test_a_directory_fsync_that_keeps_failing_is_logged_and_the_file_still_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """The rename is made, so no data waits on the fsync: the file is recovered and
    synced as usual, and the log says its name is not durable yet."""
    prog = _prog(tmp_path, "s", 5)
    report = recover_capture_dir(tmp_path, _FlakyDisk(fail=3))  # type: ignore[arg-type]
    assert not prog.exists()
    assert len(report.recovered) == 1
    assert report.left == []
    assert "the directory fsync failed" in caplog.text


def test_a_prog_the_disk_will_not_recover_is_left_for_the_next_start(tmp_path: Path):
    broken = _prog(tmp_path, "a", 5)
    report = recover_capture_dir(tmp_path, _FlakyDisk(broken=True))  # type: ignore[arg-type]
    assert report.left == [broken]
    assert broken.exists()  # untouched: the next start tries again
    again = recover_capture_dir(tmp_path, OsFileSystem())
    assert len(again.recovered) == 1
    assert again.records == 5


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
