"""Ports: the seams between Ferry's logic and the outside world.

Each port is a ``typing.Protocol``. Production adapters live in ``actors/adapters``;
the simulator provides its own (``sim/``) so the same logic runs under simulated
time, disk and faults. The file-system port is synchronous on purpose: the actors
run its calls through one async wrapper (a worker thread in production, inline in
the simulator), which keeps the codec free of Trio and easy to fault-inject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class WritableFile(Protocol):
    """An open file that is only appended to."""

    def write(self, data: bytes | memoryview) -> int:
        """Writes some prefix of ``data`` and returns its length (may be short)."""
        ...

    def fsync(self) -> None:
        """Makes everything written so far durable."""
        ...

    def close(self) -> None:
        """Closes the file; safe to call twice."""
        ...


class FileSystem(Protocol):
    """The file operations Ferry performs, and nothing more.

    Every method may raise ``OSError`` (``ENOSPC``, ``EIO``, …); callers decide
    whether that is transient. Paths are absolute.
    """

    def create_new(self, path: Path) -> WritableFile:
        """Creates ``path`` exclusively (``FileExistsError`` if it exists), mode 0600."""
        ...

    def open_append(self, path: Path) -> WritableFile:
        """Opens an existing file for appending."""
        ...

    def open_read(self, path: Path) -> BinaryIO:
        """Opens a file for buffered binary reading."""
        ...

    def rename(self, src: Path, dst: Path) -> None:
        """Atomically renames ``src`` to ``dst`` within one directory tree."""
        ...

    def fsync_dir(self, path: Path) -> None:
        """Makes the directory entries of ``path`` durable (after create/rename/unlink)."""
        ...

    def truncate(self, path: Path, size: int) -> None:
        """Truncates ``path`` to ``size`` bytes and makes that durable."""
        ...

    def unlink(self, path: Path) -> None:
        """Removes a file."""
        ...

    def makedirs(self, path: Path) -> None:
        """Creates a directory and its parents (mode 0700); no error if it exists."""
        ...

    def exists(self, path: Path) -> bool:
        """Whether ``path`` exists."""
        ...

    def size(self, path: Path) -> int:
        """The size of a file in bytes."""
        ...


class WallClock(Protocol):
    """Wall-clock time for timestamps and file names, in nanoseconds since the epoch.

    Scheduling never uses it (that is Trio's clock); the simulator drives it from
    Trio's clock so both advance together.
    """

    def now_ns(self) -> int:
        """The current wall-clock time."""
        ...


class BlockingRunner(Protocol):
    """Runs a blocking function without blocking the event loop (or, in sim, inline)."""

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        """Calls ``fn(*args)`` and returns its result.

        The call is never abandoned half-way: cancellation waits for it to end, so
        a file operation either completes or raises, and files stay consistent.
        """
        ...


@dataclass(frozen=True, slots=True)
class DiskStats:
    """Usage of the file system holding a path, in bytes."""

    total: int
    used: int
    free: int

    @property
    def used_fraction(self) -> float:
        """Used share of the whole file system (0-1)."""
        return self.used / self.total if self.total else 0.0


class DiskUsage(Protocol):
    """How full the disk is (psutil in production, simulated in sim)."""

    def usage(self, path: Path) -> DiskStats:
        """Usage of the file system that holds ``path``."""
        ...
