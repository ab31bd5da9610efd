"""The robot's simulated storage: a real temp dir behind the ``FileSystem`` seam, plus physics.

What the simulation adds to the real files:

- **durability**: bytes written but not fsynced are at risk; a power cut
  (``Disk.power_cut``) keeps a random prefix of each file's unsynced tail, so a
  ``.prog`` can end in a torn record and a file renamed before its fsync can lose
  its end;
- **directory entries**: a create, rename, unlink or mkdir is durable only once
  its directory is fsynced (the strict POSIX rule, not ext4's kinder journal). A
  power cut keeps a random prefix of each directory's changes since its last
  fsync and undoes the rest, newest first: a created file or directory vanishes
  (a directory with everything in it), a renamed file takes its old name back, and
  a deleted file returns;
- **capacity**: a disk-fill fault makes writes short or fail with ``ENOSPC``,
  and ``SimDiskUsage`` reports the same numbers to the retention actor;
- **slowness**: ``SimRunner`` makes every blocking call take simulated time;
- **death**: each agent incarnation sees the disk through its own
  ``SimFileSystem``; after a crash every call from the dead incarnation raises
  ``RobotCrashed``, so no cleanup code of a dead process can touch the files.

Calls run inline (no threads), so a seeded run repeats exactly.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, TypeVarTuple, Unpack, final

import trio

from actors.adapters.os_fs import OsFileSystem
from actors.codec import CAPTURE_EXT, PROG_EXT
from actors.ports import DirEntry, DiskStats
from sim.faults import FaultKind

if TYPE_CHECKING:
    import random
    from collections.abc import Callable
    from pathlib import Path

    from actors.adapters.os_fs import OsFile
    from sim.conditions import Conditions
    from sim.faults import Fault
    from sim.trace import Trace

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_MIN_TOTAL = 256 << 10
_GRAVES = ".graves"
"""Below the disk's root (outside the capture dir): deleted files wait there until durably gone."""


class _Kind(Enum):
    CREATE = "create"
    RENAME = "rename"
    UNLINK = "unlink"
    MKDIR = "mkdir"


@final
@dataclass(frozen=True, slots=True)
class _Change:
    """One directory-entry change not yet made durable by an fsync of its directory."""

    seq: int
    kind: _Kind
    path: Path
    """The name that appeared (create, mkdir, a rename's target) or went (unlink)."""
    other: Path | None = None
    """A rename's old name; where an unlinked file waits (its grave)."""
    grave: Path | None = None
    """Where the file a rename replaced waits: the replacement is one change."""


class RobotCrashed(BaseException):
    """The simulated robot lost power: the code of that incarnation may not touch the world.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` in the
    agent may swallow it, as no handler survives a real power cut.
    """


@final
class Incarnation:
    """One run of the agent process, from start to crash or stop."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.alive = True

    def check(self) -> None:
        """Raises ``RobotCrashed`` once this incarnation is dead."""
        if not self.alive:
            raise RobotCrashed(f"incarnation {self.number} lost power")


class DiskObserver(Protocol):
    """What the invariant checker learns from the disk."""

    def finished(self, path: Path) -> None:
        """``path`` just became a finished ``.capture`` file."""

    def removing(self, path: Path) -> None:
        """``path`` (a file sync may own) is about to be deleted."""

    def survived_power_cut(self, path: Path, durable: int) -> None:
        """A ``.prog`` kept at least its first ``durable`` bytes through a power cut."""

    def power_lost(self) -> None:
        """A power cut begins (before any file is torn or entry undone)."""

    def resurrected(self, path: Path) -> None:
        """``path``, deleted before its directory was fsynced, is back after a power cut."""


@final
class Disk:
    """The device: capacity, usage and which bytes would survive a power cut."""

    def __init__(
        self,
        root: Path,
        rng: random.Random,
        trace: Trace,
        observer: DiskObserver,
        *,
        total: int = 1 << 30,
        other: int = 100 << 20,
        conditions: Conditions | None = None,
    ) -> None:
        self.root = root
        self._conditions = conditions
        self._root_prefix = f"{root}{os.sep}"
        self._rng = rng
        self._trace = trace
        self.observer = observer
        self.total = total
        self.other = other
        self._base = (total, other)
        self.data = 0
        self._durable: dict[Path, int] = {}
        """Files with bytes not yet fsynced, and how many of their bytes are durable."""
        self._journal: dict[Path, list[_Change]] = {}
        """Per directory, its entry changes since it was last fsynced, oldest first."""
        self._seq = 0
        self._buried = 0
        self._graves_made = False
        self.lost_entries = 0
        self.torn_bytes = 0
        self.enospc = 0
        self.fsync_errors = 0
        self.fsync_lost_bytes = 0

    def free(self) -> int:
        """Bytes a write may still use."""
        return self.total - self.other - self.data

    def fill(self, fault: Fault) -> None:
        """A disk-fill fault starts: mostly capture data (``magnitude`` >= 0.5) or other data."""
        if fault.magnitude >= 0.5:
            # A small disk that capture fills: other data at half the capture data (so
            # the capture dir holds 2/3 of what is used), and the disk-full threshold
            # just above today's usage, within up to 128 KiB more capture data.
            headroom = int((fault.magnitude - 0.5) * 2 * (128 << 10))
            self.other = self.data // 2
            self.total = max(_MIN_TOTAL, int((self.data + self.other + headroom) / 0.9))
        else:
            self.other = self.total - self.data - int(fault.magnitude * (256 << 10))
        self._trace.event("disk", f"fill total={self.total} other={self.other} data={self.data}")

    def maybe_fail_fsync(self, path: Path) -> None:
        """Under a fsync-error fault, fails ``path``'s fsync now and then, as Linux does.

        After a writeback error Linux drops the dirty pages and reports ``EIO``
        once: the bytes written since the file's last good fsync are gone (here,
        the file is cut back to them) and a later fsync succeeds. A writer that
        only retried the fsync would lose them without knowing.

        Raises:
            OSError: ``EIO``, the fsync failed.
        """
        if not self._fsync_fails():
            return
        durable = self._durable.pop(path, None)
        lost = 0
        if durable is not None:
            size = os.path.getsize(path)
            lost = size - durable
            os.truncate(path, durable)
            self.data -= lost
        self.fsync_errors += 1
        self.fsync_lost_bytes += lost
        self._trace.event("disk", f"fsync-error {self.rel(path)} lost {lost}")
        raise OSError(errno.EIO, "Input/output error (simulated writeback failure)", str(path))

    def maybe_fail_fsync_dir(self, directory: Path) -> None:
        """Under a fsync-error fault, fails a directory's fsync now and then.

        Its entry changes since the last good fsync stay unsynced (a power cut
        may still undo them), so each caller must fsync again before it relies
        on them: a rename it reports as done, a delete it counts.

        Raises:
            OSError: ``EIO``, the fsync failed.
        """
        if not self._fsync_fails():
            return
        self.fsync_errors += 1
        self._trace.event("disk", f"fsync-error {self.rel(directory)}/")
        raise OSError(errno.EIO, "Input/output error (simulated)", str(directory))

    def _fsync_fails(self) -> bool:
        """Whether this fsync fails: drawn only while a fsync-error window is open."""
        fault = self._conditions.get(FaultKind.FSYNC_ERROR) if self._conditions else None
        return fault is not None and self._rng.random() < fault.magnitude

    def unfill(self) -> None:
        """The disk-fill fault ends: the other data is gone again."""
        self.total, self.other = self._base
        self._trace.event("disk", f"unfill data={self.data}")

    def power_cut(self) -> None:
        """Undoes unsynced entry changes, tears unsynced tails, tells the checker what survived."""
        self.observer.power_lost()
        self._lose_unsynced_entries()
        for path in sorted(self._durable):
            durable = self._durable[path]
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                continue
            keep = durable + self._rng.randint(0, max(0, size - durable))
            if keep < size:
                os.truncate(path, keep)
                self.data -= size - keep
                self.torn_bytes += size - keep
                self._trace.event("disk", f"torn {self.rel(path)} {size}->{keep}")
        survivors = [p for p in self._durable if p.name.endswith(PROG_EXT)]
        for path in sorted(survivors):
            self.observer.survived_power_cut(path, self._durable[path])
        self._durable.clear()

    def _lose_unsynced_entries(self) -> None:
        lost: list[_Change] = []
        for directory in sorted(self._journal):
            changes = self._journal[directory]
            keep = self._rng.randint(0, len(changes))
            self._made_durable(changes[:keep])
            lost.extend(changes[keep:])
        self._journal.clear()
        lost.sort(key=_seq, reverse=True)
        for change in lost:
            self.lost_entries += 1
            self._trace.event("disk", f"lost {change.kind.value} {self.rel(change.path)}")
            self._undo(change)

    def _undo(self, change: _Change) -> None:
        path, other = change.path, change.other
        if change.kind is _Kind.CREATE:
            if os.path.isfile(path):
                self.data -= os.path.getsize(path)
                os.unlink(path)
                self._durable.pop(path, None)
        elif change.kind is _Kind.RENAME:
            assert other is not None
            if os.path.lexists(path) and os.path.isdir(other.parent) and not os.path.lexists(other):
                os.rename(path, other)
                if path in self._durable:
                    self._durable[other] = self._durable.pop(path)
                if change.grave is not None:  # the file it replaced is back
                    os.rename(change.grave, path)
                    self.data += os.path.getsize(path)
            elif change.grave is not None:
                os.unlink(change.grave)
        elif change.kind is _Kind.UNLINK:
            assert other is not None
            if os.path.isdir(path.parent) and not os.path.lexists(path):
                os.rename(other, path)
                self.data += os.path.getsize(path)
                self.observer.resurrected(path)
            else:
                os.unlink(other)
        elif os.path.isdir(path):  # MKDIR: the directory goes with everything in it
            for parent, _, names in os.walk(path):
                for name in names:
                    self.data -= os.path.getsize(os.path.join(parent, name))
            shutil.rmtree(path)
            for inside in [p for p in self._durable if path in p.parents]:
                del self._durable[inside]

    def _made_durable(self, changes: list[_Change]) -> None:
        for change in changes:
            if change.kind is _Kind.UNLINK:
                assert change.other is not None
                os.unlink(change.other)
            elif change.grave is not None:
                os.unlink(change.grave)

    def rel(self, path: Path) -> str:
        """``path`` relative to the disk's root (the trace never holds temp paths).

        Cut from the string: ``Path.relative_to`` took half a percent of a run.
        """
        text = str(path)
        if text.startswith(self._root_prefix):
            return text[len(self._root_prefix) :].replace(os.sep, "/")
        return path.name

    # ------------------------------------------------------------ bookkeeping

    def _changed(
        self, kind: _Kind, path: Path, other: Path | None = None, grave: Path | None = None
    ) -> None:
        self._seq += 1
        change = _Change(self._seq, kind, path, other, grave)
        self._journal.setdefault(path.parent, []).append(change)

    def _dir_synced(self, directory: Path) -> None:
        changes = self._journal.pop(directory, None)
        if changes:
            self._made_durable(changes)

    def _bury(self, path: Path) -> Path:
        """Unlinks ``path`` for now: the file waits in a grave until the change is durable."""
        graves = self.root / _GRAVES
        if not self._graves_made:
            graves.mkdir(exist_ok=True)
            self._graves_made = True
        self._buried += 1
        grave = graves / f"{self._buried}-{path.name}"
        os.rename(path, grave)
        return grave

    def _unlinked(self, path: Path, size: int) -> None:
        self._removed(path, size)
        self._changed(_Kind.UNLINK, path, self._bury(path))

    def _created(self, path: Path) -> None:
        self._durable[path] = 0
        self._changed(_Kind.CREATE, path)

    def _wrote(self, path: Path, n: int) -> None:
        self.data += n
        if path not in self._durable:  # its first unsynced bytes: all before them are durable
            self._durable[path] = max(0, os.path.getsize(path) - n)

    def _synced(self, path: Path) -> None:
        self._durable.pop(path, None)

    def _renamed(self, src: Path, dst: Path, replaced: Path | None) -> None:
        if src in self._durable:
            self._durable[dst] = self._durable.pop(src)
        self._changed(_Kind.RENAME, dst, src, replaced)

    def _removed(self, path: Path, size: int) -> None:
        self.data -= size
        self._durable.pop(path, None)

    def _truncated(self, path: Path, before: int, after: int) -> None:
        self.data -= before - after
        self._durable.pop(path, None)  # the seam's truncate is durable


@final
class SimFile:
    """An append-only file on the simulated disk."""

    def __init__(self, disk: Disk, incarnation: Incarnation, path: Path, inner: OsFile) -> None:
        self._disk = disk
        self._inc = incarnation
        self._path = path
        self._inner = inner

    def write(self, data: bytes | memoryview) -> int:
        self._inc.check()
        free = self._disk.free()
        if free <= 0:
            self._disk.enospc += 1
            raise OSError(errno.ENOSPC, "No space left on device (simulated)", str(self._path))
        view = memoryview(data)[:free]
        n = self._inner.write(view)
        self._disk._wrote(self._path, n)
        return n

    def fsync(self) -> None:
        self._inc.check()
        self._disk.maybe_fail_fsync(self._path)
        self._inner.fsync()
        self._disk._synced(self._path)

    def close(self) -> None:
        # The kernel closes a dead process's files too: allowed after a crash.
        self._inner.close()


@final
class SimFileSystem:
    """``FileSystem`` of one incarnation: real calls, the disk's physics, the checker's view."""

    def __init__(self, disk: Disk, incarnation: Incarnation) -> None:
        self._disk = disk
        self._inc = incarnation
        self._os = OsFileSystem()

    def create_new(self, path: Path) -> SimFile:
        self._inc.check()
        handle = SimFile(self._disk, self._inc, path, self._os.create_new(path))
        self._disk._created(path)
        return handle

    def open_append(self, path: Path) -> SimFile:
        self._inc.check()
        return SimFile(self._disk, self._inc, path, self._os.open_append(path))

    def open_read(self, path: Path) -> BinaryIO:
        self._inc.check()
        return self._os.open_read(path)

    def rename(self, src: Path, dst: Path) -> None:
        self._inc.check()
        replaced = None
        if os.path.lexists(dst) and os.path.lexists(src):  # kept until the rename is durable
            self._disk._removed(dst, self._os.size(dst))
            replaced = self._disk._bury(dst)
        self._os.rename(src, dst)
        self._disk._renamed(src, dst, replaced)
        if src.name.endswith(PROG_EXT) and dst.name.endswith(CAPTURE_EXT):
            self._disk.observer.finished(dst)

    def fsync_dir(self, path: Path) -> None:
        self._inc.check()
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "No such directory (simulated)", str(path))
        self._disk.maybe_fail_fsync_dir(path)
        self._disk._dir_synced(path)

    def truncate(self, path: Path, size: int) -> None:
        self._inc.check()
        before = self._os.size(path)
        self._os.truncate(path, size)
        self._disk._truncated(path, before, size)

    def unlink(self, path: Path) -> None:
        self._inc.check()
        size = self._os.size(path)
        if not path.name.endswith(PROG_EXT):
            self._disk.observer.removing(path)
        self._disk._unlinked(path, size)

    def makedirs(self, path: Path) -> list[Path]:
        self._inc.check()
        created = self._os.makedirs(path)
        for directory in created:
            self._disk._changed(_Kind.MKDIR, directory)
        return created

    def exists(self, path: Path) -> bool:
        self._inc.check()
        return self._os.exists(path)

    def size(self, path: Path) -> int:
        self._inc.check()
        return self._os.size(path)

    def list_dir(self, path: Path) -> list[DirEntry]:
        self._inc.check()
        return sorted(self._os.list_dir(path), key=lambda e: e.name)

    def stat(self, path: Path) -> DirEntry:
        self._inc.check()
        return self._os.stat(path)


@final
class SimRunner:
    """``BlockingRunner`` of one incarnation: inline, slowed by slow disks, dead after a crash."""

    def __init__(self, incarnation: Incarnation, conditions: Conditions) -> None:
        self._inc = incarnation
        self._conditions = conditions

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        self._inc.check()
        slow = self._conditions.get(FaultKind.SLOW_DISK)
        if slow is not None:
            await trio.sleep(slow.magnitude)
            self._inc.check()
        result = fn(*args)
        await trio.lowlevel.checkpoint()
        return result


@final
class SimDiskUsage:
    """``DiskUsage`` from the simulated device, whatever path is asked about."""

    def __init__(self, disk: Disk) -> None:
        self._disk = disk

    def usage(self, path: Path) -> DiskStats:
        d = self._disk
        used = d.other + d.data
        return DiskStats(total=d.total, used=used, free=max(0, d.total - used))


def _seq(change: _Change) -> int:
    return change.seq
