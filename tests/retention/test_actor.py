"""The retention actor on a real temp dir with a scripted disk: what it deletes, counts and pauses.

The disk-usage figures come from a fake ``DiskUsage`` (the seam the simulator
also drives); the files, their readings and the deletions are real.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from actors.adapters.os_fs import OsFileSystem
from actors.adapters.runner import InlineRunner
from actors.ports import DiskStats
from actors.retention import RetentionActor, RetentionPlan, RetentionSeams
from actors.retention_policy import Reason, RetentionSettings
from tests.cli.captures import write_tabular

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_700_000_000_000_000_000


@dataclass
class ScriptedDisk:
    """``DiskUsage`` whose figures a test sets; ``error`` makes the next reads fail."""

    total: int = 1_000_000
    used: int = 0
    error: OSError | None = None

    def usage(self, path: Path) -> DiskStats:
        if self.error is not None:
            raise self.error
        return DiskStats(total=self.total, used=self.used, free=self.total - self.used)


class Clock:
    def now_ns(self) -> int:
        return T0 + 10**12


def _files(capture: Path, n: int, readings: int = 4) -> list[Path]:
    directory = capture / "rdk_component_sensor" / "env" / "Readings"
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"readings": {"i": i}} for i in range(readings)]
    return [write_tabular(directory, rows, wall_ns=T0 + k * 10**9) for k in range(n)]


def _actor(capture: Path, disk: ScriptedDisk, **kw) -> tuple[RetentionActor, list[bool]]:
    paused: list[bool] = []
    in_progress = kw.pop("in_progress", frozenset())
    fs = kw.pop("fs", None) or OsFileSystem()
    settings = RetentionSettings(capture_dir=capture, **kw)
    seams = RetentionSeams(
        fs=fs,
        runner=InlineRunner(),
        clock=Clock(),
        disk=disk,
        in_progress=lambda: in_progress,
        pause_capture=paused.append,
    )
    return RetentionActor(RetentionPlan(dirs=(settings,)), seams), paused


def _full(capture: Path) -> ScriptedDisk:
    """A disk 95 % used, nearly all of it by the capture dir."""
    used = sum(p.stat().st_size for p in capture.rglob("*") if p.is_file())
    return ScriptedDisk(total=int(used / 0.95), used=used)


async def test_a_full_disk_deletes_every_fifth_file_in_time_order_and_counts_exactly(
    tmp_path, caplog
):
    """Disk-full policy: the 1st, 6th, … finished file goes; readings and bytes are counted."""
    files = _files(tmp_path, 10, readings=4)
    sizes = [p.stat().st_size for p in files]
    actor, _ = _actor(tmp_path, _full(tmp_path))
    caplog.set_level(logging.WARNING, logger="ferry.retention")
    await actor.check()
    gone = [p for p in files if not p.exists()]
    assert gone == [files[0], files[5]]
    count = actor.stats.deleted[Reason.DISK_FULL]
    assert (count.files, count.readings) == (2, 8)
    assert count.bytes == sizes[0] + sizes[5]
    logged = [r.message for r in caplog.records if "deleted" in r.message]
    assert len(logged) == 2
    assert "4 readings" in logged[0]


class _FailingDirSyncs:
    """The real file system, except that every directory fsync fails with EIO."""

    def __init__(self) -> None:
        self._os = OsFileSystem()

    def __getattr__(self, name: str) -> object:
        return getattr(self._os, name)

    def fsync_dir(self, path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error", str(path))


async def test_a_delete_whose_directory_fsync_fails_is_still_counted_and_logged(tmp_path, caplog):
    """Found by the simulator: when the fsync after the unlink raised, the count and
    the log line were skipped, so a file was gone with no deletion accounted for."""
    files = _files(tmp_path, 10)
    actor, _ = _actor(tmp_path, _full(tmp_path), fs=_FailingDirSyncs())
    caplog.set_level(logging.WARNING, logger="ferry.retention")
    await actor.check()
    assert [p for p in files if not p.exists()] == [files[0], files[5]]
    assert actor.stats.deleted[Reason.DISK_FULL].files == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum("): deleted " in m for m in messages) == 2
    assert sum("is not durable yet: [Errno 5]" in m for m in messages) == 2


async def test_files_being_synced_are_never_deleted(tmp_path):
    files = _files(tmp_path, 10)
    actor, _ = _actor(tmp_path, _full(tmp_path), in_progress=frozenset({files[0], files[5]}))
    await actor.check()
    assert files[0].exists()
    assert files[5].exists()
    assert actor.stats.deleted[Reason.DISK_FULL].files == 2


async def test_below_the_threshold_nothing_is_deleted(tmp_path):
    files = _files(tmp_path, 10)
    used = sum(p.stat().st_size for p in files)
    actor, _ = _actor(tmp_path, ScriptedDisk(total=used * 2, used=used))
    await actor.check()
    assert all(p.exists() for p in files)
    assert actor.stats.warning == ""


async def test_a_full_disk_mostly_used_by_others_warns_and_deletes_nothing(tmp_path):
    files = _files(tmp_path, 10)
    used = sum(p.stat().st_size for p in files) * 10
    actor, _ = _actor(tmp_path, ScriptedDisk(total=int(used / 0.95), used=used))
    await actor.check()
    assert all(p.exists() for p in files)
    assert actor.stats.warning
    assert actor.render_status()["warning"] == actor.stats.warning


async def test_below_min_free_bytes_capture_pauses_and_resumes_when_space_returns(tmp_path):
    _files(tmp_path, 2)
    disk = ScriptedDisk(total=10_000_000, used=9_990_000)
    actor, paused = _actor(tmp_path, disk, min_free_bytes=100_000)
    await actor.check()
    assert paused == [True]
    disk.used = 1_000_000
    await actor.check()
    assert paused == [True, False]
    assert actor.render_status()["capture_paused"] is False


async def test_checks_run_every_30_s_and_a_disk_error_is_counted_not_fatal(
    autojump_clock, tmp_path
):
    _files(tmp_path, 2)
    disk = ScriptedDisk(error=OSError(5, "Input/output error"))
    actor, _ = _actor(tmp_path, disk)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(61)
        assert actor.stats.errors == 3  # at 0, 30 and 60 s
        assert "Input/output error" in actor.stats.last_error
        disk.error = None
        await trio.sleep(30)
        assert actor.stats.checks == 1
        nursery.cancel_scope.cancel()


async def test_nothing_is_checked_while_capture_is_disabled(autojump_clock, tmp_path):
    files = _files(tmp_path, 10)
    actor, _ = _actor(tmp_path, _full(tmp_path))
    plan = RetentionPlan(dirs=actor._plan.dirs, capture_enabled=False)
    await actor.apply(plan)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    assert actor.stats.checks == 0
    assert all(p.exists() for p in files)


async def test_the_age_cap_deletes_files_older_than_it_oldest_first(tmp_path):
    """retention_max_age_hours deletes even unsynced data, only past the cap, and counts it."""
    files = _files(tmp_path, 3)  # captured 1,000 s, 999 s and 998 s before the clock
    keep_all, _ = _actor(tmp_path, ScriptedDisk(), max_age_ns=3600 * 10**9)
    await keep_all.check()
    assert all(p.exists() for p in files)
    capped, _ = _actor(tmp_path, ScriptedDisk(), max_age_ns=998_500_000_000)
    await capped.check()
    assert [p.exists() for p in files] == [False, False, True]
    assert capped.stats.deleted[Reason.AGE_CAP].files == 2
