"""Start-up recovery of a capture directory, and the lock that makes it safe.

Viam's attempt at renaming ``.prog`` files at start-up was reverted because it
ran on every reconfigure and renamed files still being written (spec §2.7).
Ferry recovers only once, at process start, before its writer opens any file,
and only while holding an exclusive lock on the capture directory, so it can
never touch the live files of another agent.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, final

from actors.codec import FAILED_DIR, PROG_EXT, SKIPPED_DIRS, CorruptCaptureFile, recover_prog
from actors.durable_dirs import ensure_dir

if TYPE_CHECKING:
    from pathlib import Path

    from actors.ports import FileSystem

LOGGER = logging.getLogger("ferry.recovery")

LOCK_NAME = ".ferry.lock"


class CaptureDirLocked(RuntimeError):
    """Another Ferry agent holds the capture directory."""


@final
class CaptureDirLock:
    """An exclusive ``flock`` on ``<capture_dir>/.ferry.lock``, held while the agent runs.

    The kernel releases it when the process dies, so a crash never leaves it stale.
    """

    def __init__(self, capture_dir: Path) -> None:
        self.path = capture_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock or raises ``CaptureDirLocked`` naming the holder's pid."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise CaptureDirLocked(
                f"{self.path.parent}: capture directory is in use by another Ferry agent "
                f"(pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Releases the lock (closing the descriptor drops the flock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


@final
@dataclass
class RecoveryReport:
    """What start-up recovery did, for the log and status."""

    recovered: list[Path] = field(default_factory=list)
    removed_empty: int = 0
    records: int = 0
    dropped_bytes: int = 0
    failed: list[Path] = field(default_factory=list)
    left: list[Path] = field(default_factory=list)
    """``.prog`` files a disk error kept from being recovered (the next start tries again)."""


def recover_capture_dir(capture_dir: Path, fs: FileSystem) -> RecoveryReport:
    """Finishes every ``.prog`` under ``capture_dir`` left by a crash.

    Each keeps its complete records; one with an unreadable header is moved to
    ``failed/<same relative path>`` with a ``.reason`` file beside it. Blocking:
    run it through the ``BlockingRunner``.
    """
    report = RecoveryReport()
    if not capture_dir.is_dir():
        return report
    for prog in _prog_files(capture_dir):
        try:
            result = recover_prog(prog, fs=fs)
        except CorruptCaptureFile as exc:
            try:
                report.failed.append(move_to_failed(capture_dir, prog, exc.reason, fs))
            except OSError as move_error:
                report.left.append(prog)
                LOGGER.error("%s: could not move it to failed/ (%s): %s", prog, exc, move_error)
                continue
            LOGGER.error("moved unreadable capture file to failed/: %s", exc)
            continue
        except OSError as exc:  # a disk error: capture must still start
            report.left.append(prog)
            LOGGER.error("%s: not recovered, left for the next start: %s", prog, exc)
            continue
        if result.entry_error:
            LOGGER.warning(
                "%s: its rename or removal is made, but the directory fsync failed (%s); "
                "a later fsync of the directory makes it durable",
                prog,
                result.entry_error,
            )
        if result.path is None:
            report.removed_empty += 1
            continue
        report.recovered.append(result.path)
        report.records += result.records
        report.dropped_bytes += result.dropped_bytes
        LOGGER.warning(
            "recovered %s: %d complete records kept%s",
            result.path,
            result.records,
            f", {result.dropped_bytes} torn bytes cut ({result.reason})"
            if result.dropped_bytes
            else "",
        )
    return report


def move_to_failed(root: Path, path: Path, reason: str, fs: FileSystem) -> Path:
    """Moves ``path`` to ``<root>/failed/<relative path>`` and writes ``<name>.reason``."""
    target = root / FAILED_DIR / path.relative_to(root)
    ensure_dir(fs, target.parent)
    n = 1
    while fs.exists(target):
        target = target.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    fs.rename(path, target)
    note = fs.create_new(target.with_name(target.name + ".reason"))
    try:
        note.write(f"{reason}\n".encode())
        note.fsync()
    finally:
        note.close()
    fs.fsync_dir(target.parent)
    fs.fsync_dir(path.parent)
    return target


def _prog_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        found.extend(
            root.joinpath(os.path.relpath(dirpath, root), name)
            for name in sorted(filenames)
            if name.endswith(PROG_EXT)
        )
    return [p.resolve() for p in found]
