"""The simulated disk's directory entries: durable only once their directory is fsynced.

A power cut keeps a random prefix of each directory's changes since its last
fsync and undoes the rest, newest first (strict POSIX, which Ferry must survive
on any file system). Tests pin each undo with a generator that keeps nothing,
and show that Ferry's own file writing survives it.
"""

from __future__ import annotations

import errno
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.codec import CaptureFileWriter, RecordEncoder
from actors.durable_dirs import ensure_dir
from actors.planted import Bug, planting
from sim.conditions import Conditions
from sim.disk import Disk, Incarnation, SimFileSystem
from sim.faults import Fault, FaultKind
from sim.trace import Trace
from tests.codec.test_writer import HEADER, WALL_NS


class _KeepNone(random.Random):
    """A power cut that keeps none of the unsynced changes (and no unsynced bytes)."""

    def randint(self, a: int, b: int) -> int:
        return a


class _KeepAll(random.Random):
    def randint(self, a: int, b: int) -> int:
        return b


class _Observer:
    def __init__(self) -> None:
        self.back: list[Path] = []

    def finished(self, path: Path) -> None:
        pass

    def removing(self, path: Path) -> None:
        pass

    def survived_power_cut(self, path: Path, durable: int) -> None:
        pass

    def power_lost(self) -> None:
        pass

    def resurrected(self, path: Path) -> None:
        self.back.append(path)


def _disk(root: Path, rng: random.Random | None = None) -> tuple[Disk, SimFileSystem, _Observer]:
    observer = _Observer()
    disk = Disk(root, rng or _KeepNone(), Trace(lambda: 0.0), observer)
    return disk, SimFileSystem(disk, Incarnation(1)), observer


def _write(fs: SimFileSystem, path: Path, data: bytes, *, sync_dir: bool) -> None:
    handle = fs.create_new(path)
    handle.write(data)
    handle.fsync()
    handle.close()
    if sync_dir:
        fs.fsync_dir(path.parent)


def test_a_create_vanishes_unless_its_directory_was_fsynced(tmp_path: Path) -> None:
    disk, fs, _ = _disk(tmp_path)
    _write(fs, tmp_path / "kept", b"k" * 10, sync_dir=True)
    _write(fs, tmp_path / "lost", b"l" * 7, sync_dir=False)  # fsynced data, unsynced name
    disk.power_cut()
    assert (tmp_path / "kept").read_bytes() == b"k" * 10
    assert not (tmp_path / "lost").exists()
    assert disk.data == 10
    assert disk.lost_entries == 1


def test_an_unsynced_rename_is_reverted(tmp_path: Path) -> None:
    disk, fs, _ = _disk(tmp_path)
    _write(fs, tmp_path / "f.prog", b"abc", sync_dir=True)
    fs.rename(tmp_path / "f.prog", tmp_path / "f.capture")
    disk.power_cut()
    assert (tmp_path / "f.prog").read_bytes() == b"abc"
    assert not (tmp_path / "f.capture").exists()


def test_an_unsynced_unlink_brings_the_file_back_and_says_so(tmp_path: Path) -> None:
    disk, fs, observer = _disk(tmp_path)
    _write(fs, tmp_path / "back", b"12345", sync_dir=True)
    _write(fs, tmp_path / "gone", b"678", sync_dir=True)
    fs.unlink(tmp_path / "back")
    fs.unlink(tmp_path / "gone")
    fs.fsync_dir(tmp_path)  # both unlinks durable...
    _write(fs, tmp_path / "again", b"9", sync_dir=True)
    fs.unlink(tmp_path / "again")  # ...this one not
    disk.power_cut()
    assert not (tmp_path / "back").exists()
    assert not (tmp_path / "gone").exists()
    assert (tmp_path / "again").read_bytes() == b"9"
    assert observer.back == [tmp_path / "again"]
    assert disk.data == 1
    assert list((tmp_path / ".graves").iterdir()) == []  # durable unlinks freed their files


def test_an_unsynced_mkdir_takes_the_directory_and_its_files(tmp_path: Path) -> None:
    disk, fs, _ = _disk(tmp_path)
    leaf = tmp_path / "a" / "b"
    assert fs.makedirs(leaf) == [tmp_path / "a", leaf]
    _write(fs, leaf / "f.capture", b"x" * 100, sync_dir=True)  # durable in b; b itself is not
    disk.power_cut()
    assert not (tmp_path / "a").exists()
    assert disk.data == 0


def test_a_power_cut_may_also_keep_every_change(tmp_path: Path) -> None:
    disk, fs, observer = _disk(tmp_path, _KeepAll())
    fs.makedirs(tmp_path / "d")
    _write(fs, tmp_path / "d" / "f.prog", b"abc", sync_dir=False)
    fs.rename(tmp_path / "d" / "f.prog", tmp_path / "d" / "f.capture")
    disk.power_cut()
    assert (tmp_path / "d" / "f.capture").read_bytes() == b"abc"
    assert disk.lost_entries == 0
    assert observer.back == []


def test_fsync_dir_of_a_missing_directory_fails_as_on_a_real_disk(tmp_path: Path) -> None:
    _, fs, _ = _disk(tmp_path)
    with pytest.raises(FileNotFoundError):
        fs.fsync_dir(tmp_path / "missing")


def _finish_one_file(fs: SimFileSystem, directory: Path) -> Path:
    writer = CaptureFileWriter.create(directory, WALL_NS, HEADER, fs=fs)
    writer.append(RecordEncoder().tabular(1, 2, {"readings": {"t": 1.5}}))
    return writer.finish()


def test_a_capture_file_finished_in_a_new_directory_survives_a_power_cut(tmp_path: Path) -> None:
    """The writer's directories go through ``ensure_dir``: the whole path is durable."""
    disk, fs, _ = _disk(tmp_path)
    ensure_dir(fs, tmp_path / "capture")
    path = _finish_one_file(fs, tmp_path / "capture" / "rdk_component_sensor" / "s1" / "Readings")
    disk.power_cut()
    assert path.is_file()
    assert disk.lost_entries == 0


def test_without_the_parent_fsyncs_the_same_file_is_lost(tmp_path: Path) -> None:
    """The planted bug ``unsynced-dirs``: what the simulator must catch."""
    disk, fs, _ = _disk(tmp_path)
    with planting({Bug.UNSYNCED_DIRS}):
        path = _finish_one_file(fs, tmp_path / "capture" / "s1" / "Readings")
    disk.power_cut()
    assert not path.exists()
    assert not (tmp_path / "capture").exists()


NAMES = ("a", "b", "c")
ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(NAMES), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
        st.tuples(st.just("unlink"), st.sampled_from(NAMES)),
        st.tuples(
            st.just("fsync_dir"),
        ),
    ),
    max_size=25,
)


def _listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()}


@settings(max_examples=150, deadline=None)
@given(script=ops, seed=st.integers(0, 2**32))
def test_a_power_cut_leaves_the_directory_as_it_was_after_some_change_since_its_fsync(
    script: list[tuple[object, ...]], seed: int
) -> None:
    """The model's promise: what an fsync made durable stays, and the rest is a prefix.

    Every state the directory passed through since its last fsync is a possible
    outcome, and nothing else is: no change is kept without the ones before it.
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        directory = root / "d"
        directory.mkdir()
        disk, fs, _ = _disk(root, random.Random(seed))
        states = [_listing(directory)]  # since the last fsync_dir
        for op in script:
            if op[0] == "create" and not (directory / str(op[1])).exists():
                handle = fs.create_new(directory / str(op[1]))
                handle.write(op[2])  # type: ignore[arg-type]
                handle.fsync()
                handle.close()
            elif op[0] == "rename" and (directory / str(op[1])).exists() and op[1] != op[2]:
                fs.rename(directory / str(op[1]), directory / str(op[2]))
            elif op[0] == "unlink" and (directory / str(op[1])).exists():
                fs.unlink(directory / str(op[1]))
            elif op[0] == "fsync_dir":
                fs.fsync_dir(directory)
                states = []
            else:
                continue
            states.append(_listing(directory))
        disk.power_cut()
        assert _listing(directory) in states
        assert disk.data == sum(len(b) for b in _listing(directory).values())


# -- failed fsyncs -----------------------------------------------------------------


def _failing_disk(root: Path, chance: float) -> tuple[Disk, SimFileSystem, Conditions]:
    conditions = Conditions()
    disk = Disk(root, _KeepNone(3), Trace(lambda: 0.0), _Observer(), conditions=conditions)
    conditions.open(Fault(0.0, FaultKind.FSYNC_ERROR, 60.0, chance))
    return disk, SimFileSystem(disk, Incarnation(1)), conditions


def test_a_failed_fsync_loses_the_bytes_since_the_last_good_one_as_linux_does(
    tmp_path: Path,
) -> None:
    disk, fs, conditions = _failing_disk(tmp_path, 1.0)
    path = tmp_path / "a.prog"
    handle = fs.create_new(path)
    handle.write(b"durable")
    conditions.clear()
    handle.fsync()
    conditions.open(Fault(0.0, FaultKind.FSYNC_ERROR, 60.0, 1.0))
    handle.write(b" and lost")
    data_before = disk.data

    with pytest.raises(OSError, match="Input/output") as raised:
        handle.fsync()

    assert raised.value.errno == errno.EIO
    assert path.read_bytes() == b"durable"
    assert disk.data == data_before - len(b" and lost")
    assert (disk.fsync_errors, disk.fsync_lost_bytes) == (1, len(b" and lost"))
    conditions.clear()
    handle.write(b" again")
    handle.fsync()  # a later fsync succeeds, as on Linux
    handle.close()
    assert path.read_bytes() == b"durable again"


def test_the_capture_writer_writes_the_lost_bytes_again_after_a_failed_fsync(
    tmp_path: Path,
) -> None:
    """What the fault exists to check: Ferry's writer keeps every record through it."""
    disk, fs, conditions = _failing_disk(tmp_path, 1.0)
    encoder = RecordEncoder()
    records = [encoder.tabular(WALL_NS + i, WALL_NS + i, {"i": i}) for i in range(3)]
    conditions.clear()  # (the directory is made and fsynced before the fault)
    writer = CaptureFileWriter.create(tmp_path / "s", WALL_NS, HEADER, fs=fs)
    conditions.open(Fault(0.0, FaultKind.FSYNC_ERROR, 60.0, 1.0))
    writer.append(records[0])
    with pytest.raises(OSError, match="Input/output"):
        writer.sync()
    writer.append(records[1])
    with pytest.raises(OSError, match="Input/output"):
        writer.finish()
    conditions.clear()
    writer.append(records[2])
    final = writer.finish()
    assert final.read_bytes() == HEADER + b"".join(records)
    assert disk.fsync_errors == 2
