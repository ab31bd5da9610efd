"""The real file system behind the ``FileSystem`` port: plain POSIX calls."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO, final

from actors.ports import DirEntry

if TYPE_CHECKING:
    from pathlib import Path

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


@final
class OsFile:
    """An append-only file descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def write(self, data: bytes | memoryview) -> int:
        return os.write(self._require_fd(), data)

    def fsync(self) -> None:
        os.fsync(self._require_fd())

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise ValueError("file is closed")
        return self._fd


@final
class OsFileSystem:
    """``FileSystem`` on the local disk, with durable renames and truncations."""

    def create_new(self, path: Path) -> OsFile:
        return OsFile(os.open(path, _CREATE_FLAGS, 0o600))

    def open_append(self, path: Path) -> OsFile:
        return OsFile(os.open(path, _APPEND_FLAGS))

    def open_read(self, path: Path) -> BinaryIO:
        return open(path, "rb")

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def truncate(self, path: Path, size: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def makedirs(self, path: Path) -> list[Path]:
        missing: list[Path] = []
        probe = path
        while not os.path.isdir(probe) and probe.parent != probe:
            missing.append(probe)
            probe = probe.parent
        created: list[Path] = []
        for directory in reversed(missing):
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise
                continue  # another process made it first
            created.append(directory)
        return created

    def exists(self, path: Path) -> bool:
        return os.path.lexists(path)

    def size(self, path: Path) -> int:
        return os.stat(path).st_size

    def stat(self, path: Path) -> DirEntry:
        st = os.stat(path)
        return DirEntry(path.name, False, st.st_size, st.st_mtime_ns)

    def list_dir(self, path: Path) -> list[DirEntry]:
        entries: list[DirEntry] = []
        with os.scandir(path) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    entries.append(DirEntry(entry.name, is_dir=True))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    entries.append(DirEntry(entry.name, False, st.st_size, st.st_mtime_ns))
        return entries
